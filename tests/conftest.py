"""Shared helpers: every behaviour test runs real pytest (pytester) on small files."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Imported here, in the outer run, so that leakguard's modules outlive each in-process pytester
# run: pytester drops the modules a run imported, and a class imported again (SettingsError, say)
# would no longer match the one an older module object raises.
import leakguard.plugin.hooks  # noqa: F401
from tests.server_support import kill_if_same
from tests.support.options import QUIET, SHORT_GRACE
from tests.support.processes import RECORDER, Spawned

RunLeakguard = Callable[..., pytest.RunResult]


@pytest.fixture(autouse=True)
def _inner_runs_keep_their_order(request: pytest.FixtureRequest) -> None:
    """pytest-randomly is a dev dependency: every inner pytester run, in-process or subprocess
    (and its xdist workers), has it off unless the test passes ``-p randomly`` itself.

    Through ``PYTEST_ADDOPTS``, set after pytester cleared it: a test that forgets `QUIET` still
    runs its files in the order it wrote them, and ``-p randomly`` later on the command line
    unblocks the plugin again.

    ``CI`` and ``BUILD_NUMBER`` are cleared too: with either set (CI sets ``CI=true``), pytest
    prints each error's whole message in the short summary, so report lines appear twice.
    """
    if "pytester" not in request.fixturenames:
        return
    request.getfixturevalue("pytester")
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:randomly")
    for name in ("CI", "BUILD_NUMBER"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run_leakguard(pytester: pytest.Pytester) -> RunLeakguard:
    """Run pytest in-process on this test's files, leakguard on, threads tracker only."""

    def run(*args: str, on: bool = True, trackers: str | None = "threads") -> pytest.RunResult:
        base = [*QUIET, *SHORT_GRACE]
        if on:
            base.insert(0, "--leakguard")
        if trackers is not None:
            base += ["-o", f"leakguard_trackers={trackers}"]
        return pytester.runpytest(*base, *args)

    return run


# A thread body that ends by itself, so in-process inner runs never leave the outer process
# with a thread that outlives the suite.
LEAKY_THREAD = """
import threading, time

def start_leaky(name="leaky", daemon=False, seconds=3.0):
    t = threading.Thread(target=time.sleep, args=(seconds,), name=name, daemon=daemon)
    t.start()
    return t
"""


@pytest.fixture
def leaky_module(pytester: pytest.Pytester) -> None:
    """A helper module ``leaky`` importable by the inner test files."""
    pytester.makepyfile(leaky=LEAKY_THREAD)


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private state dir for this test; at the end, kill what its records still hold."""
    path = tmp_path / "state"
    monkeypatch.setenv("LEAKGUARD_STATE_DIR", str(path))
    yield path
    for record in (path / "servers").glob("*.json"):
        data = json.loads(record.read_text())
        for pid, ctime in [(data["pid"], data["create_time"]), *data["members"]]:
            kill_if_same(pid, ctime)


@pytest.fixture
def spawned(pytester: pytest.Pytester) -> Iterator[Spawned]:
    """A ``procrec`` module for the inner files; at the end, kill what they recorded."""
    record = Spawned(pytester.path / "pids.txt")
    pytester.makepyfile(procrec=RECORDER.format(path=str(record.path)))
    yield record
    record.kill_survivors()

"""Installed and off, the server helpers do nothing: no state directory, no sweep, no hook."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from leakguard.servers.records import RUN_MARK
from tests.server_support import dead_identity, running, write_record

# A suite that uses fixtures of every scope, parametrization and a class, but no server helper.
ORDINARY_SUITE = """
    import pytest

    @pytest.fixture(scope="session")
    def db():
        return {}

    @pytest.fixture(scope="module")
    def table(db):
        db["t"] = []
        return db["t"]

    @pytest.fixture
    def row(table):
        table.append(1)
        yield len(table)
        table.pop()

    @pytest.mark.parametrize("n", range(3))
    def test_row(row, n):
        assert row == 1

    class TestGroup:
        def test_in_class(self, tmp_path, row):
            assert tmp_path.exists()
"""

# Which hook implementations come from the server helpers, seen from inside the run.
HOOK_PROBE = """
    import json, os

    def server_hookimpls(config):
        found = []
        for name in dir(config.pluginmanager.hook):
            caller = getattr(config.pluginmanager.hook, name)
            for impl in getattr(caller, "get_hookimpls", list)():
                plugin = impl.plugin
                module = getattr(plugin, "__name__", None) or type(plugin).__module__
                if module.startswith("leakguard.servers"):
                    found.append(f"{name} from {module}")
        return sorted(found)

    def test_zz_probe(request):
        with open(os.environ["PROBE_OUT"], "w") as f:
            json.dump(server_hookimpls(request.config), f)
"""

USES_A_SESSION_SERVER = """
    import sys
    import pytest
    import leakguard

    @pytest.fixture(scope="session")
    def api():
        with leakguard.ServerProcess([sys.executable, "-c", "import time; time.sleep(60)"]) as s:
            yield s

    def test_a_uses_api(api):
        assert api.is_alive()
"""


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A live process in a session of its own, carrying a dead run's mark: what a stale server
    looks like to the sweep."""
    env = {**os.environ, RUN_MARK: "dead-run"}
    cmd = [sys.executable, "-c", "import time; time.sleep(60)"]
    popen = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        yield popen
    finally:
        popen.kill()
        popen.wait()


def test_fixtures_come_with_the_plain_install_and_create_nothing(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xdg = tmp_path / "xdg"
    monkeypatch.delenv("LEAKGUARD_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(xdg))
    result = pytester.runpytest_subprocess("--fixtures")
    result.stdout.fnmatch_lines(["free_port*", "*", "server_process*"], consecutive=False)
    assert not xdg.exists()


def test_a_run_with_leakguard_off_creates_no_state_directory(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xdg = tmp_path / "xdg"
    monkeypatch.delenv("LEAKGUARD_STATE_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(xdg))
    pytester.makepyfile(test_ordinary=ORDINARY_SUITE)
    pytester.runpytest_subprocess().assert_outcomes(passed=4)
    assert not xdg.exists()

    # Control: the first use of a helper makes it (so the check above looks in the right place).
    pytester.makepyfile(test_port="def test_port(free_port):\n    assert free_port > 0\n")
    pytester.runpytest_subprocess("test_port.py").assert_outcomes(passed=1)
    assert (xdg / "leakguard" / "ports").is_dir()


def test_a_run_with_leakguard_off_signals_no_stale_server(
    pytester: pytest.Pytester, state_dir: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    proc = psutil.Process(sleeper.pid)
    owner_pid, owner_ctime = dead_identity()
    record = write_record(
        state_dir / "servers",
        "stale",
        pid=proc.pid,
        create_time=proc.create_time(),
        pgid=proc.pid,
        run_id="dead-run",
        owner_pid=owner_pid,
        owner_create_time=owner_ctime,
    )
    pytester.makepyfile(test_ordinary=ORDINARY_SUITE)
    pytester.runpytest_subprocess().assert_outcomes(passed=4)
    assert running(proc.pid, proc.create_time())
    assert record.exists()

    # Control: the first server a run starts sweeps the stale one away, and says so.
    pytester.makepyfile(test_server=USES_A_SESSION_SERVER)
    result = pytester.runpytest_subprocess("test_server.py")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            f"*StaleServerWarning: stopped server 'stale' pid {proc.pid} (run dead-run) left by an earlier run"
        ]
    )
    assert not running(proc.pid, proc.create_time())
    assert not record.exists()


def test_a_run_with_leakguard_off_adds_no_server_hook(
    pytester: pytest.Pytester, state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "hooks.json"
    monkeypatch.setenv("PROBE_OUT", str(out))
    pytester.makepyfile(test_ordinary=ORDINARY_SUITE, test_zz_probe=HOOK_PROBE)
    pytester.runpytest_subprocess().assert_outcomes(passed=5)
    assert out.read_text() == "[]"

    # Control: once a session fixture starts a server, its health checks join the run.
    pytester.makepyfile(test_server=USES_A_SESSION_SERVER)
    pytester.runpytest_subprocess("test_server.py", "test_zz_probe.py").assert_outcomes(passed=2)
    assert "pytest_runtest_protocol from leakguard.servers.watcher" in out.read_text()

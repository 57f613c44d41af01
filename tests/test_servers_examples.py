"""The five server scenarios of docs/how-to/servers.md, run as the how-to shows them."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.server_support import answers, running, unrelated_server

# Every test gets a private state dir whose recorded servers are killed afterwards.
pytestmark = pytest.mark.usefixtures("state_dir")

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES = DOCS / "examples" / "servers"


def enter_example(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    """Lay out the examples as in the repository, and have pytest run inside example ``name``."""
    shutil.copy(EXAMPLES / "server.py", pytester.path / "server.py")
    folder = pytester.path / name
    shutil.copytree(EXAMPLES / name, folder)
    monkeypatch.chdir(folder)
    return folder


def test_the_how_to_shows_every_example_file_as_it_is() -> None:
    doc = (DOCS / "how-to" / "servers.md").read_text()
    shown = dict(re.findall(r"```python\n# (examples/servers/\S+)\n(.*?)```", doc, re.DOTALL))
    on_disk = {str(p.relative_to(DOCS)): p.read_text() for p in EXAMPLES.rglob("*.py")}
    assert sorted(shown) == sorted(on_disk)
    for name, text in on_disk.items():
        assert shown[name] == text, f"{name} differs from the how-to"


def test_a_session_server_that_crashes_mid_file_is_restarted_for_the_next_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    enter_example(pytester, monkeypatch, "crash_mid_file")
    started = time.monotonic()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    elapsed = time.monotonic() - started
    result.assert_outcomes(passed=4, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "test_payments.py::test_pay",
            "*ServerRestartedWarning: server 'api' died during "
            "test_orders.py::test_a_request_that_brings_the_server_down (exit 70); restarted",
        ]
    )
    assert elapsed < 20  # told at once: no test waits out a timeout


def test_a_server_behind_a_shell_is_stopped_whole_and_its_port_freed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    enter_example(pytester, monkeypatch, "shell_wrapper")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_xdist_workers_starting_servers_on_free_ports_never_collide(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    enter_example(pytester, monkeypatch, "xdist_workers")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=12)
    assert "address already in use" not in result.stdout.str().lower()


@pytest.fixture
def other_server(tmp_path: Path) -> Iterator[tuple[psutil.Process, int]]:
    with unrelated_server(tmp_path) as server:
        yield server


def wait_for_recorded_server(records: Path, inner: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert inner.poll() is None, "the first run ended before it was killed"
        for path in records.glob("*.json"):
            record: dict[str, object] = json.loads(path.read_text())
            port = record["port"]
            assert isinstance(port, int)
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return record
        time.sleep(0.05)
    raise AssertionError("the first run's server never came up")


def test_a_server_left_by_a_run_killed_with_sigkill_is_stopped_by_the_next_run(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    state_dir: Path,
    other_server: tuple[psutil.Process, int],
) -> None:
    folder = enter_example(pytester, monkeypatch, "killed_run")
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_hangs.py"]
    inner = subprocess.Popen(cmd, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        record = wait_for_recorded_server(state_dir / "servers", inner)
    finally:
        os.kill(inner.pid, signal.SIGKILL)  # what CI does to a job that hangs
        inner.wait()
    pid, ctime, port = record["pid"], record["create_time"], record["port"]
    assert isinstance(pid, int)
    assert isinstance(ctime, float)
    assert running(pid, ctime)

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_next_run.py")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            f"*StaleServerWarning: stopped server 'api' pid {pid} on port {port} "
            f"(run *) left by an earlier run"
        ]
    )
    assert not running(pid, ctime)
    unrelated, other_port = other_server
    assert unrelated.is_running()
    assert answers(other_port)


def test_readiness_waits_for_consecutive_healthy_answers_of_a_slow_server(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    enter_example(pytester, monkeypatch, "slow_start")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)

"""The sweep of servers a dead run left: when it runs, what counts as dead, what it leaves alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from leakguard.servers.records import RUN_MARK
from tests.server_support import answers, dead_identity, running, unrelated_server, write_record

# Every test gets a private state dir whose recorded servers are killed afterwards.
pytestmark = pytest.mark.usefixtures("state_dir")

STARTS_A_SERVER = """
    import sys

    def test_starts_a_server(server_process):
        server_process([sys.executable, "-c", "import time; time.sleep(60)"])
"""

# The first run: a session server behind a shell, then a test that hangs until it is killed.
HANGING_RUN = """
    import json, os, sys, time
    import psutil
    import pytest
    import leakguard

    @pytest.fixture(scope="session")
    def api():
        port = leakguard.free_port()
        cmd = f"{sys.executable} -m http.server {port} --bind 127.0.0.1; echo done"
        with leakguard.ServerProcess(cmd, port=port, ready="http") as server:
            yield server

    def test_hangs(api):
        procs = [psutil.Process(api.pid), *psutil.Process(api.pid).children()]
        seen = {"port": api.port, "procs": [(p.pid, p.create_time()) for p in procs]}
        with open("server.json.tmp", "w") as f:
            json.dump(seen, f)
        os.replace("server.json.tmp", "server.json")
        time.sleep(120)
"""

# A parent that starts pytest, kills it and never reaps it (like a container's pid 1 that does
# not reap), then starts the next run while the killed one is a zombie.
NON_REAPING_PARENT = """
    import json, os, signal, subprocess, sys, time
    import psutil

    inner = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_hang.py"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists("server.json"):
            assert inner.poll() is None and time.monotonic() < deadline, "inner run never got up"
            time.sleep(0.02)
        os.kill(inner.pid, signal.SIGKILL)
        while psutil.Process(inner.pid).status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.01)
        second = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_next.py"],
            capture_output=True, text=True, timeout=120,
        )
        zombie = psutil.Process(inner.pid).status() == psutil.STATUS_ZOMBIE
        with open("parent.json", "w") as f:
            json.dump({"zombie_throughout": zombie, "output": second.stdout}, f)
    finally:
        inner.kill()
        inner.wait()
"""


@pytest.fixture
def other_server(tmp_path: Path) -> Iterator[tuple[psutil.Process, int]]:
    with unrelated_server(tmp_path) as server:
        yield server


@pytest.fixture
def marked_sleeper() -> Iterator[psutil.Process]:
    """A live process in its own session carrying a dead run's mark: a real stale server."""
    env = {**os.environ, RUN_MARK: "dead-run"}
    cmd = [sys.executable, "-c", "import time; time.sleep(60)"]
    popen = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        yield psutil.Process(popen.pid)
    finally:
        popen.kill()
        popen.wait()


def test_server_of_a_run_left_as_a_zombie_is_stopped_by_the_next_run(
    pytester: pytest.Pytester, other_server: tuple[psutil.Process, int]
) -> None:
    pytester.makepyfile(test_hang=HANGING_RUN, test_next=STARTS_A_SERVER)
    parent = pytester.makepyfile(parent=NON_REAPING_PARENT)
    subprocess.run([sys.executable, str(parent)], cwd=pytester.path, timeout=240, check=True)
    outcome = json.loads((pytester.path / "parent.json").read_text())
    seen = json.loads((pytester.path / "server.json").read_text())

    assert outcome["zombie_throughout"]
    assert len(seen["procs"]) == 2  # the shell and the http.server it started
    assert not any(running(pid, ctime) for pid, ctime in seen["procs"])
    leader = seen["procs"][0][0]
    assert (
        f"StaleServerWarning: stopped server 'api' pid {leader} on port {seen['port']}"
        in outcome["output"]
    )
    assert "1 passed, 1 warning" in outcome["output"]
    unrelated, port = other_server
    assert unrelated.is_running()
    assert answers(port)


def test_sweep_leaves_alone_what_it_cannot_prove_a_dead_run_started(
    pytester: pytest.Pytester,
    state_dir: Path,
    other_server: tuple[psutil.Process, int],
    marked_sleeper: psutil.Process,
) -> None:
    unrelated, port = other_server
    owner_pid, owner_ctime = dead_identity()
    dead_owner = {"owner_pid": owner_pid, "owner_create_time": owner_ctime}
    me = psutil.Process()
    records = state_dir / "servers"
    common = {"pid": unrelated.pid, "pgid": unrelated.pid, "port": port}
    # The pid matches, the start time does not: the pid was reused by another process.
    write_record(
        records, "reused-pid", **common, create_time=unrelated.create_time() + 1, **dead_owner
    )
    # Exact identity, but the run that recorded it is still going (this very process).
    write_record(
        records,
        "live-owner",
        **common,
        create_time=unrelated.create_time(),
        owner_pid=me.pid,
        owner_create_time=me.create_time(),
    )
    # Exact identity and a dead owner, but the process does not carry that run's mark.
    write_record(records, "no-mark", **common, create_time=unrelated.create_time(), **dead_owner)
    # Control: a process that is what its record says, from a dead run, is stopped.
    stale = marked_sleeper
    write_record(
        records,
        "stale",
        pid=stale.pid,
        create_time=stale.create_time(),
        pgid=stale.pid,
        run_id="dead-run",
        **dead_owner,
    )
    pytester.makepyfile(STARTS_A_SERVER)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines([f"*StaleServerWarning: stopped server 'stale' pid {stale.pid} *"])
    assert not running(stale.pid, stale.create_time())
    assert unrelated.is_running()
    assert answers(port)
    assert (records / "live-owner.json").exists()
    assert not (records / "reused-pid.json").exists()
    assert not (records / "no-mark.json").exists()


def test_a_stale_server_notice_never_fails_a_test_under_w_error(
    pytester: pytest.Pytester, state_dir: Path, marked_sleeper: psutil.Process
) -> None:
    owner_pid, owner_ctime = dead_identity()
    stale = marked_sleeper
    write_record(
        state_dir / "servers",
        "stale",
        pid=stale.pid,
        create_time=stale.create_time(),
        pgid=stale.pid,
        run_id="dead-run",
        owner_pid=owner_pid,
        owner_create_time=owner_ctime,
    )
    pytester.makepyfile(STARTS_A_SERVER)
    result = pytester.runpytest_subprocess("-W", "error::leakguard.servers.StaleServerWarning")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "test_*.py::test_starts_a_server",
            f"  *test_*.py:4: StaleServerWarning: stopped server 'stale' pid {stale.pid} *",
        ]
    )
    assert not running(stale.pid, stale.create_time())

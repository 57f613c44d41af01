"""The processes tracker, continued: its safety rules checked directly, the settings and the
fixture handle, ``leakguard.check`` outside pytest, and xdist."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import psutil
import pytest

import leakguard
from leakguard.trackers.processes import cleanup as proc_cleanup
from leakguard.trackers.processes import procfs
from leakguard.trackers.processes.cleanup import Proc
from tests.support.outcomes import assert_leaked
from tests.support.pairs import run_pair
from tests.support.processes import Spawned, assert_leaked_and_stopped, run_processes


def _proc(pid: int, not_before: float, mark: bytes = b"LEAKGUARD_RUN_0=none") -> Proc:
    stat = procfs.read_stat(pid)
    assert stat is not None
    return Proc(pid, stat.start, "child of test", 1, False, stat, not_before, mark, os.getpid())


@pytest.fixture
def orphan_sleep() -> Iterator[int]:
    """A ``sleep 30`` that is neither this process's descendant nor marked: a stranger."""
    out = subprocess.run(
        ["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"], capture_output=True, text=True
    ).stdout
    pid = int(out)
    yield pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def child_sleep() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "30"])
    yield proc
    proc.kill()
    proc.wait()


# --- the safety rules, checked right before each signal ----------------------------------------
def test_process_outside_the_tree_without_the_mark_is_never_signalled(orphan_sleep: int) -> None:
    proc = _proc(orphan_sleep, not_before=0.0)
    reason = proc_cleanup.send_verified(proc, signal.SIGTERM)
    assert reason == "neither a descendant of the test process nor tied to one of its spawns"
    assert psutil.Process(orphan_sleep).status() != psutil.STATUS_ZOMBIE


def test_child_born_before_the_snapshot_is_never_signalled(
    child_sleep: subprocess.Popen[bytes],
) -> None:
    proc = _proc(child_sleep.pid, not_before=procfs.now() + 100)
    assert proc_cleanup.send_verified(proc, signal.SIGTERM) == "born before the test"
    assert child_sleep.poll() is None


def test_recycled_pid_is_never_signalled(child_sleep: subprocess.Popen[bytes]) -> None:
    proc = _proc(child_sleep.pid, not_before=0.0)
    proc.start -= 1  # the same pid, another birth: not the process that was reported
    assert proc_cleanup.send_verified(proc, signal.SIGTERM) == "gone"
    assert child_sleep.poll() is None


def test_cleanup_reports_what_it_refused_and_leaves_the_process_alone(orphan_sleep: int) -> None:
    outcomes = proc_cleanup.stop([_proc(orphan_sleep, not_before=0.0)], timeout=0.1)
    assert outcomes == [
        f"process {orphan_sleep} left running (not provably ours: "
        "neither a descendant of the test process nor tied to one of its spawns)"
    ]
    assert psutil.pid_exists(orphan_sleep)


# --- settings and the fixture handle ---------------------------------------------------------
def test_cleanup_off_reports_the_process_and_leaves_it_running(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pytester.makepyfile(
        test_leaky="""
        import subprocess, procrec
        def test_leaky():
            procrec.record(subprocess.Popen(["sleep", "30"]).pid)
        """
    )
    result = run_processes(pytester, "-o", "leakguard_cleanup=false")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["cleanup: off (leakguard_cleanup = false)*"])
    assert len(spawned.survivors()) == 1  # left for the fixture to kill


def test_leakguard_ignore_lets_one_popen_go(pytester: pytest.Pytester, spawned: Spawned) -> None:
    pair = run_pair(
        pytester,
        lambda: run_processes(pytester),
        test_it="""
        import subprocess, procrec
        def test_keeps_one(leakguard):
            kept = subprocess.Popen(["sleep", "30"])
            procrec.record(kept.pid)
            leakguard.ignore(kept)  # case only
            procrec.record(subprocess.Popen(["sleep", "31"]).pid)
        """,
    )
    # Control: both reported and stopped.
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(["leakguard: test_it.py::test_keeps_one leaked 2 resources"])
    pair.case.assert_outcomes(passed=1, errors=1)
    pair.case.stdout.fnmatch_lines(["leakguard: test_it.py::test_keeps_one leaked 1 resource"])
    pair.case.stdout.fnmatch_lines(["  process * 'sleep 31' (child of test)*"])
    assert [p.cmdline() for p in spawned.survivors()] == [["sleep", "30"]]


def test_stopped_process_is_continued_and_terminated(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pytester.makepyfile(
        test_leaky="""
        import os, signal, subprocess, procrec
        def test_stops_it():
            p = subprocess.Popen(["sleep", "30"])
            procrec.record(p.pid)
            os.kill(p.pid, signal.SIGSTOP)
        """
    )
    result = run_processes(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["cleanup: process * terminated"])
    assert spawned.survivors() == []


def test_works_under_xdist(pytester: pytest.Pytester, spawned: Spawned) -> None:
    pytester.makepyfile(
        test_leaky="""
        import subprocess, procrec
        def test_leaky():
            procrec.record(subprocess.Popen(["sleep", "30"]).pid)
        def test_clean():
            subprocess.run(["true"], check=True)
        """
    )
    result = run_processes(pytester, "-n", "2")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*process * 'sleep 30' (child of test)*"])
    assert spawned.survivors() == []


# --- outside pytest ------------------------------------------------------------------------
def test_check_block_raises_for_a_leaked_child_and_stops_it() -> None:
    leaked: list[subprocess.Popen[bytes]] = []
    with pytest.raises(leakguard.LeakError) as info:  # noqa: SIM117  # the block under test
        with leakguard.check(trackers=["processes"], grace=0.05):
            leaked.append(subprocess.Popen(["sleep", "30"]))
    try:
        assert f"process {leaked[0].pid} 'sleep 30' (child of test)" in str(info.value)
        assert leaked[0].poll() == -signal.SIGTERM
    finally:
        leaked[0].kill()
        leaked[0].wait()


def test_nested_check_blocks_share_the_spawn_record() -> None:
    leaked: list[subprocess.Popen[bytes]] = []
    with leakguard.check(trackers=["processes"], grace=0.05):
        with pytest.raises(leakguard.LeakError) as info:  # noqa: SIM117
            with leakguard.check(trackers=["processes"], grace=0.05):
                leaked.append(subprocess.Popen(["sleep", "30"]))
        time.sleep(0)
    try:
        assert "spawned at" in str(info.value)
        assert leaked[0].poll() is not None  # the inner block stopped it; the outer saw nothing
    finally:
        if leaked[0].poll() is None:
            leaked[0].kill()
            leaked[0].wait()
    assert not any(name.startswith("LEAKGUARD_RUN_") for name in os.environ)


def test_fork_from_c_code_is_seen_without_any_python_spawn_call(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pytester.makepyfile(
        test_leaky="""
        import ctypes, os, time, procrec
        def test_c_fork():
            pid = ctypes.CDLL(None).fork()  # bypasses os.fork: no wrapper sees it
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            procrec.record(pid)
        """
    )
    assert_leaked_and_stopped(
        run_processes(pytester),
        spawned,
        ["  process * 'fork of *' (child of test)*", "cleanup: process * terminated"],
    )


def test_grandchild_of_a_module_fixture_server_is_not_blamed_on_the_tests(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pytester.makeconftest(
        """
        import subprocess, pytest, procrec

        @pytest.fixture(scope="module")
        def server():
            shell = subprocess.Popen(["sh", "-c", "sleep 30 & echo $!; wait"],
                                     stdout=subprocess.PIPE, text=True)
            procrec.record(shell.pid)
            procrec.record(int(shell.stdout.readline()), execs="sleep")
            yield shell
            shell.terminate()
            shell.wait()
            shell.stdout.close()
        """
    )
    pytester.makepyfile(
        test_it="""
        def test_first(server):
            pass

        def test_second(server):
            pass
        """
    )
    result = run_processes(pytester)
    # The shell is stopped in teardown; its sleep, left running, is the fixture's leak.
    assert_leaked(
        result,
        "fixture 'server' (module-scoped)",
        ["  process * 'sleep 30' (*)*conftest.py:5 in server"],
        passed=2,
        errors=1,
    )
    result.stdout.no_fnmatch_line("leakguard: test_it.py::*")
    assert spawned.survivors() == []

"""Children of the test that exit around its end: a daemon a child leaves behind as it exits
during the grace period, and a child that exited while the test still holds its ``Popen``
without ever waiting for it (issue 10, items 5 and 6)."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.support.processes import Spawned, run_processes


@pytest.fixture
def daemon_pidfile(pytester: pytest.Pytester) -> Iterator[Path]:
    """Where the inner run's shell writes its daemon's pid; the daemon is killed at the end."""
    path = pytester.path / "daemon.pid"
    yield path
    if path.exists() and path.read_text().strip():
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(int(path.read_text()))
            if proc.cmdline() == ["sleep", "300"]:
                os.kill(proc.pid, signal.SIGKILL)


def _running_sleep_300(path: Path) -> bool:
    try:
        proc = psutil.Process(int(path.read_text()))
        return proc.cmdline() == ["sleep", "300"] and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, ValueError, FileNotFoundError):
        return False


def test_child_that_daemonizes_during_the_grace_period_is_found(
    pytester: pytest.Pytester, daemon_pidfile: Path
) -> None:
    pytester.makepyfile(
        test_it=f"""
        import subprocess

        def test_daemonizes_late():
            subprocess.Popen(["sh", "-c",
                              "sleep 0.05; sleep 300 >/dev/null 2>&1 & echo $! > {daemon_pidfile}"])

        def test_next_spawns_too():
            subprocess.run(["true"], check=True)
        """
    )
    # A grace long enough for the shell to exit within it, even on a loaded machine: what it
    # leaves is then the leak (and is there until the grace ends, so the test takes that long).
    result = run_processes(pytester, "-o", "leakguard_grace=3.0", "-W", "ignore::ResourceWarning")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_daemonizes_late leaked 1 resource",
            "  process * 'sleep 300' (orphan)*via a child spawned at test_it.py:4 in test_daemonizes_late",
            "cleanup: process * terminated",
        ]
    )
    result.stdout.no_fnmatch_line("*test_next_spawns_too leaked*")
    assert daemon_pidfile.exists()
    assert not _running_sleep_300(daemon_pidfile)


def test_exited_child_whose_popen_is_kept_is_reported_and_reaped_through_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_it="""
        import subprocess, sys, time

        KEEP = []

        def test_keeps_popen():
            KEEP.append(subprocess.Popen([sys.executable, "-c", "pass"]))
            with open(f"/proc/{KEEP[0].pid}/stat") as f:
                while f.read().rpartition(")")[2].split()[0] != "Z":
                    time.sleep(0.01)
                    f.seek(0)

        def test_its_returncode_is_intact():
            assert KEEP[0].returncode == 0
            assert KEEP[0].wait() == 0
        """
    )
    result = run_processes(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_keeps_popen leaked 1 resource",
            "  zombie * 'python* -c pass' (child of test)   spawned at test_it.py:6 in test_keeps_popen",
            "cleanup: zombie * reaped",
            "*zombie * 'python* -c pass' (child of test) exited, never waited for*",
        ]
    )


def test_grandchild_that_daemonizes_during_the_grace_period_is_found(
    pytester: pytest.Pytester, spawned: Spawned, daemon_pidfile: Path
) -> None:
    inner_sh = f"sleep 0.05; sleep 300 >/dev/null 2>&1 & echo $! > {daemon_pidfile}"
    outer_sh = f"sh -c {shlex.quote(inner_sh)}; sleep 30"
    pytester.makepyfile(
        test_it=f"""
        import subprocess, procrec

        def test_daemonizes_late():
            # The child stays; the grandchild shell leaves a daemon and exits within the grace.
            shell = subprocess.Popen(["sh", "-c", {outer_sh!r}])
            procrec.record(shell.pid)
        """
    )
    result = run_processes(pytester, "-o", "leakguard_grace=3.0", "-W", "ignore::ResourceWarning")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["leakguard: test_it.py::test_daemonizes_late leaked 3 resources"])
    result.stdout.fnmatch_lines(["  process * 'sleep 300' (orphan)*"])
    assert spawned.survivors() == []
    assert not _running_sleep_300(daemon_pidfile)

"""Ctrl-C (SIGINT) and SIGTERM while a checked test runs: the test's processes are stopped
under the usual rules before pytest exits, the summary says so, and Ctrl-C ends a grace wait
at once (issue 10, item 7).

Each inner pytest runs in its own session and is signalled from outside, like a terminal or
a CI runner would; what it left is then checked from outside, by the pids it recorded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.options import QUIET
from tests.support.processes import Spawned, run_processes

INNER = (*QUIET, "--leakguard", "-o", "leakguard_trackers=processes")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Inner:
    """One inner pytest run, started in its own session with its output in a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ready = path / "ready"
        self.output = path / "output.txt"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str) -> None:
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pytest", *INNER, *args],
                cwd=self.path,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # Run in the background (nohup, `cmd &`), this process may ignore SIGINT, and a
                # child inherits that: Python then raises no KeyboardInterrupt at all.
                preexec_fn=_default_sigint,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        assert self.proc is not None
        while not self.ready.exists():
            assert self.proc.poll() is None, self.text()
            assert time.monotonic() < deadline, "the inner test never got ready"
            time.sleep(0.01)

    def signal_and_wait(self, sig: int, timeout: float = 15.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the inner run was still running {timeout} s after the signal")

    def text(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def inner(pytester: pytest.Pytester, spawned: Spawned) -> Iterator[Inner]:
    run = Inner(pytester.path)
    yield run
    run.kill()


SLEEPS_IN_BODY = """
import pathlib, subprocess, time, procrec

def test_sleeps():
    procrec.record(subprocess.Popen(["sleep", "30"], start_new_session=True).pid)
    pathlib.Path("ready").touch()
    time.sleep(30)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_signal_during_the_test_stops_its_processes_before_pytest_exits(
    pytester: pytest.Pytester, inner: Inner, spawned: Spawned, sig: int
) -> None:
    pytester.makepyfile(test_it=SLEEPS_IN_BODY)
    inner.start()
    inner.wait_ready()
    assert inner.signal_and_wait(sig) == pytest.ExitCode.INTERRUPTED, inner.text()
    assert len(spawned.recorded()) == 1
    assert spawned.survivors() == [], inner.text()
    name = signal.Signals(sig).name
    assert f"leakguard: interrupted ({name}) during test_it.py::test_sleeps" in inner.text()
    assert "'sleep 30' (child of test) -> process " in inner.text()


def test_ctrl_c_in_the_tests_teardown_skips_the_grace_wait(
    pytester: pytest.Pytester, inner: Inner, spawned: Spawned
) -> None:
    pytester.makepyfile(
        test_it="""
        import pathlib, subprocess, time, pytest, procrec

        @pytest.fixture
        def slow_teardown():
            yield
            pathlib.Path("ready").touch()
            time.sleep(30)

        def test_leaks(slow_teardown):
            procrec.record(subprocess.Popen(["sleep", "30"], start_new_session=True).pid)
        """
    )
    inner.start("-o", "leakguard_grace=30")
    inner.wait_ready()
    started = time.monotonic()
    assert inner.signal_and_wait(signal.SIGINT) == 2, inner.text()
    assert time.monotonic() - started < 10, "the grace period was waited out"
    assert spawned.survivors() == [], inner.text()
    assert "leakguard: interrupted (SIGINT) during test_it.py::test_leaks" in inner.text()


def test_ctrl_c_during_the_grace_wait_ends_it_and_stops_the_processes(
    pytester: pytest.Pytester, inner: Inner, spawned: Spawned
) -> None:
    pytester.makepyfile(
        test_it="""
        import pathlib, subprocess, procrec

        def test_leaks():
            procrec.record(subprocess.Popen(["sleep", "30"], start_new_session=True).pid)
            pathlib.Path("ready").touch()
        """
    )
    inner.start("-o", "leakguard_grace=30")
    inner.wait_ready()
    time.sleep(0.5)  # the test has returned: leakguard is waiting out the grace
    started = time.monotonic()
    assert inner.signal_and_wait(signal.SIGINT) == 2, inner.text()
    assert time.monotonic() - started < 10
    assert spawned.survivors() == [], inner.text()
    assert "leakguard: interrupted (SIGINT) during test_it.py::test_leaks" in inner.text()


def test_sigterm_chains_to_the_handler_that_was_there(
    pytester: pytest.Pytester, inner: Inner, spawned: Spawned
) -> None:
    pytester.makeconftest(
        """
        import pathlib, signal

        def on_term(signum, frame):
            pathlib.Path("chained").touch()
            raise KeyboardInterrupt

        def pytest_configure(config):
            signal.signal(signal.SIGTERM, on_term)
        """
    )
    pytester.makepyfile(test_it=SLEEPS_IN_BODY)
    inner.start()
    inner.wait_ready()
    assert inner.signal_and_wait(signal.SIGTERM) == 2, inner.text()
    assert (pytester.path / "chained").exists()
    assert spawned.survivors() == [], inner.text()
    assert "leakguard: interrupted (SIGTERM) during test_it.py::test_sleeps" in inner.text()


def test_sigterm_handler_is_there_only_while_a_checked_test_runs(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import signal

        def pytest_sessionfinish(session):
            # The run is over: whatever leakguard installed is gone again.
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        """
    )
    pytester.makepyfile(
        test_it="""
        import signal, subprocess

        def test_spawns_and_waits():
            subprocess.run(["true"], check=True)
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL

        def test_next():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL

        @__import__("pytest").mark.no_resource_tracking
        def test_unchecked():
            subprocess.run(["true"], check=True)
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        """
    )
    result = run_processes(pytester)
    result.assert_outcomes(passed=3)


def test_sigterm_handler_that_carries_on_leaves_the_test_running(
    pytester: pytest.Pytester, inner: Inner, spawned: Spawned
) -> None:
    pytester.makeconftest(
        """
        import pathlib, signal

        def pytest_configure(config):
            signal.signal(signal.SIGTERM, lambda signum, frame: pathlib.Path("chained").touch())
        """
    )
    pytester.makepyfile(
        test_it="""
        import pathlib, subprocess, time, procrec

        def test_sleeps():
            procrec.record(subprocess.Popen(["sleep", "30"], start_new_session=True).pid)
            pathlib.Path("ready").touch()
            while not pathlib.Path("chained").exists():
                time.sleep(0.01)
        """
    )
    inner.start("-o", "leakguard_grace=0.05")
    inner.wait_ready()
    # The handler that was there decides: it carries on, so the test ends as usual.
    assert inner.signal_and_wait(signal.SIGTERM) == pytest.ExitCode.TESTS_FAILED, inner.text()
    assert "leakguard: test_it.py::test_sleeps leaked 1 resource" in inner.text()
    assert "interrupted" not in inner.text()
    assert spawned.survivors() == []

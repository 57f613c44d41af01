"""The polluter named from one run, for the leftovers that are gone (a port closed, a pool shut
down) and for a ResourceWarning about an earlier test's residue."""

from __future__ import annotations

import pytest

from tests.support.options import QUIET, SHORT_GRACE


def _run(pytester: pytest.Pytester, trackers: str, *extra: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--leakguard", *QUIET, *SHORT_GRACE, "-o", f"leakguard_trackers={trackers}", *extra
    )


def test_connection_refused_to_a_port_an_earlier_leak_served_names_that_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_it="""
        import socket
        KEEP = []

        def test_start_server():
            s = socket.create_server(("127.0.0.1", 0))
            KEEP.append(s)
            with open("port", "w") as f:
                f.write(str(s.getsockname()[1]))

        def test_uses_that_server():
            port = int(open("port").read())
            socket.create_connection(("127.0.0.1", port), timeout=2).close()

        def test_refused_elsewhere():
            s = socket.create_server(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        """
    )
    result = _run(pytester, "ports")
    result.assert_outcomes(passed=1, failed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_uses_that_server _*",
            "*ConnectionRefusedError*",
            "*- leakguard -*",
            "port * was served by a socket leaked by test_it.py::test_start_server "
            "(opened at test_it.py:5 in test_start_server), closed by leakguard's cleanup "
            "after that test: this test relied on it",
        ]
    )
    # Control: a refused connect to a port no earlier leak served gets no such section.
    refused_elsewhere = result.stdout.str().split("_ test_refused_elsewhere _")[1]
    assert "relied on" not in refused_elsewhere.split("short test summary")[0]


POOL_APP = """
from concurrent.futures import ThreadPoolExecutor

_POOL = None

def pool():
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=1)
    return _POOL
"""

POOL_TESTS = """
from app import pool

def test_first():
    assert pool().submit(int, "1").result() == 1

def test_second():
    assert pool().submit(int, "2").result() == 2
"""


def test_a_pool_leakguard_shut_down_as_an_earlier_tests_leak_is_named(
    pytester: pytest.Pytester,
) -> None:
    # A pool the test module keeps (its own doing) is the first test's leak; its cleanup shuts
    # the pool down, and the next test that uses it fails. Say so.
    pytester.makepyfile(test_it=POOL_APP + POOL_TESTS.replace("from app import pool", ""))
    result = _run(pytester, "threads")
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*RuntimeError: cannot schedule new futures after shutdown",
            "*- leakguard -*",
            "the ThreadPoolExecutor it submitted to was made during test_it.py::test_first "
            "(worker started at *) and shut down by leakguard's cleanup after that test, "
            "as that test's leak: this test relied on it",
        ]
    )
    # Control: without the cleanup the second test passes, and nothing is said.
    result = _run(pytester, "threads", "--leakguard-no-cleanup")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.no_fnmatch_line("*relied on it*")


def test_a_pool_the_apps_module_state_keeps_is_reported_and_left_running(
    pytester: pytest.Pytester,
) -> None:
    # The same lazily made pool in the application's module state: still the first test's leak,
    # but shutting it down would break the next test (the first rule): it is left running.
    pytester.makepyfile(app=POOL_APP, test_it=POOL_TESTS)
    result = _run(pytester, "threads")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_first leaked 1 resource",
            "cleanup: left as is: kept by app (the application's module state; "
            "closing it would break its next user)",
        ]
    )
    result.stdout.no_fnmatch_line("*cannot schedule new futures*")
    # Control: the same pool kept by the test module is shut down (see the test above).
    pytester.makepyfile(test_it=POOL_APP + POOL_TESTS.replace("from app import pool", ""))
    _run(pytester, "threads").assert_outcomes(passed=1, failed=1, errors=1)


def test_a_resource_warning_about_an_earlier_tests_residue_names_that_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_it="""
        KEEP = []

        def test_opens():
            KEEP.append(open("data.log", "w"))

        def test_drops_it():
            KEEP.clear()  # the file object goes: its __del__ warns
        """
    )
    result = _run(
        pytester, "fds", "--leakguard-no-cleanup",
        "-W", "error::ResourceWarning", "-W", "error::pytest.PytestUnraisableExceptionWarning",
    )  # fmt: skip
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ResourceWarning: unclosed file <*name='data.log'*",
            "*- leakguard -*",
            "ran with residue from earlier tests (1 resource): fd * file */data.log (mode w) (from test_it.py::test_opens)",
            "the unclosed object of the ResourceWarning is fd * file */data.log (mode w), "
            "leaked by test_it.py::test_opens (opened at test_it.py:4 in test_opens)",
        ]
    )


def test_connection_refused_to_a_port_whose_leaked_server_went_away_names_that_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_it="""
        import socket, threading

        LATER, CLOSED = threading.Event(), threading.Event()

        def serve_a_while(s):
            LATER.wait(10)  # until a later test runs, however loaded the machine
            s.close()
            CLOSED.set()

        def test_start_server():
            s = socket.create_server(("127.0.0.1", 0))
            with open("port", "w") as f:
                f.write(str(s.getsockname()[1]))
            threading.Thread(target=serve_a_while, args=(s,), daemon=True).start()

        def test_meanwhile():
            LATER.set()
            CLOSED.wait(10)

        def test_uses_that_server():
            port = int(open("port").read())
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        """
    )
    result = pytester.runpytest_subprocess(
        "--leakguard", *QUIET, *SHORT_GRACE, "-o", "leakguard_trackers=threads ports", "-n", "1"
    )
    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*_ test_uses_that_server _*",
            "*- leakguard -*",
            "port * was served by a socket leaked by test_it.py::test_start_server "
            "(opened at test_it.py:11 in test_start_server), gone since: this test relied on it",
        ]
    )

"""Resources a longer-lived fixture makes belong to that fixture, not to the first test using it."""

from __future__ import annotations

import pytest

from tests.conftest import RunLeakguard
from tests.support.outcomes import assert_leaked
from tests.support.pairs import run_pair

FIXTURE = """
import threading, pytest

@pytest.fixture(scope="{scope}")
def server():
    stop = threading.Event()
    t = threading.Thread(target=stop.wait, args=(3,), name="{scope}-server", daemon=True)
    t.start()
    yield t
    {teardown}
"""


@pytest.mark.parametrize("scope", ["class", "module", "package", "session"])
def test_thread_of_a_higher_scoped_fixture_is_not_blamed_on_the_test(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, scope: str
) -> None:
    # The control makes the same fixture function-scoped: its thread, still running when the
    # test ends, is then the test's (the case stops it at the end of its longer scope).
    fixture = FIXTURE.format(scope=scope, teardown="stop.set(); t.join()  # case only")
    pair = run_pair(
        pytester,
        run_leakguard,
        conftest=fixture.replace(
            f'@pytest.fixture(scope="{scope}")',
            f'@pytest.fixture(scope="{scope}")  # case only\n@pytest.fixture  # control only',
        ),
        test_it="""
        class TestServer:
            def test_first(self, server):
                assert server.is_alive()

            def test_second(self, server):
                assert server.is_alive()
        """,
    )
    assert_leaked(
        pair.control,
        "test_it.py::TestServer::test_first",
        [f"  thread '{scope}-server' (daemon)   started at conftest.py:7 in server"],
        passed=2,
        errors=2,
    )
    pair.case.assert_outcomes(passed=2)
    pair.case.stdout.no_fnmatch_line("*leaked*")


@pytest.mark.parametrize("scope", ["module", "session"])
def test_fixture_that_never_stops_its_thread_is_reported_by_name(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, scope: str
) -> None:
    pytester.makeconftest(FIXTURE.format(scope=scope, teardown="pass"))
    pytester.makepyfile(
        test_it="""
        def test_first(server):
            pass

        def test_last(server):
            pass
        """
    )
    result = run_leakguard()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_last*",
            f"leakguard: fixture 'server' ({scope}-scoped) leaked 1 resource",
            f"  thread '{scope}-server' (daemon)   started at conftest.py:7 in server",
        ]
    )
    result.stdout.no_fnmatch_line("leakguard: test_it.py::test_first leaked*")


def test_function_scoped_fixture_resources_belong_to_the_test(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makeconftest(FIXTURE.format(scope="function", teardown="pass"))
    pytester.makepyfile(test_it="def test_uses(server):\n    pass\n")
    result = run_leakguard()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["leakguard: test_it.py::test_uses leaked 1 resource"])


def test_thread_closed_in_fixture_teardown_is_not_a_false_alarm(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pair = run_pair(
        pytester,
        run_leakguard,
        conftest=FIXTURE.format(scope="function", teardown="stop.set(); t.join()  # case only"),
        test_it="def test_uses(server):\n    pass\n",
    )
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(["leakguard: test_it.py::test_uses leaked 1 resource"])
    pair.case.assert_outcomes(passed=1)


def test_resources_from_before_the_test_never_count(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pair = run_pair(
        pytester,
        run_leakguard,
        test_it="""
        import threading
        stop = threading.Event()
        threading.Thread(target=stop.wait, args=(3,), name="early", daemon=True).start()  # case only

        def test_nothing():
            threading.Thread(target=stop.wait, args=(3,), name="early", daemon=True).start()  # control only
            pass
        """,
    )
    # The same thread started by the test is its leak; started at import, it never counts.
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(
        ["  thread 'early' (daemon)   started at test_it.py:* in test_nothing"]
    )
    pair.case.assert_outcomes(passed=1)


def test_the_leakguard_fixture_joins_the_check_begun_at_setup(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    # The test is checked from the start of its setup: the ``leakguard`` fixture, set up after
    # another function fixture, hands out that check, not a new one that would miss the thread
    # the earlier fixture started. The handle's ``check()`` finds it (and reports it once).
    pytester.makeconftest(FIXTURE.format(scope="function", teardown="pass"))
    pytester.makepyfile(
        test_it="""
        import pytest
        from leakguard import LeakError

        def test_uses(server, leakguard):
            with pytest.raises(LeakError, match="thread 'function-server'"):
                leakguard.check()
        """
    )
    result = run_leakguard()
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*leaked*")

"""``leakguard.check`` outside the plugin: context manager, decorator, unittest."""

from __future__ import annotations

import pytest

from tests.support.options import QUIET
from tests.support.outcomes import assert_leaked
from tests.support.pairs import run_pair


def test_check_block_raises_leak_error_with_leaks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import threading, time
        import pytest
        import leakguard

        def test_block():
            with pytest.raises(leakguard.LeakError) as info:
                with leakguard.check(trackers=["threads"], grace=0.05):
                    threading.Thread(target=time.sleep, args=(2,), name="w", daemon=True).start()
            assert isinstance(info.value, AssertionError)
            assert [leak.description for leak in info.value.leaks] == ["thread 'w' (daemon) target=time:sleep"]
            assert "leakguard: block leaked 1 resource" in str(info.value)
            assert "started at test_it.py:8 in test_block" in str(info.value)
        """
    )
    pytester.runpytest(*QUIET).assert_outcomes(passed=1)


def test_check_block_that_leaks_nothing_is_silent(pytester: pytest.Pytester) -> None:
    # 0.1 s of work: within the case's 1 s grace; the control's 0.01 s is too short.
    pair = run_pair(
        pytester,
        lambda: pytester.runpytest(*QUIET),
        test_it="""
        import threading, time
        import leakguard

        def test_block():
            with leakguard.check(trackers=["threads"], grace=1.0):  # case only
            with leakguard.check(trackers=["threads"], grace=0.01):  # control only
                threading.Thread(target=time.sleep, args=(0.1,), name="short").start()
        """,
    )
    pair.control.assert_outcomes(failed=1)
    pair.control.stdout.fnmatch_lines(
        ["*LeakError: leakguard: block leaked 1 resource", "*thread 'short'*"]
    )
    pair.case.assert_outcomes(passed=1)


def test_check_does_not_replace_an_exception_leaving_the_block(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import threading, time
        import pytest
        import leakguard

        def test_block():
            with pytest.raises(KeyError):
                with leakguard.check(trackers=["threads"], grace=0.05):
                    threading.Timer(30, print).start()
                    raise KeyError("the real error")
            assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
        """
    )
    pytester.runpytest(*QUIET).assert_outcomes(passed=1)


def test_check_as_decorator_checks_each_call(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import threading, time
        import pytest
        import leakguard

        @leakguard.check(trackers=["threads"], grace=0.05, name="job")
        def job(leak):
            if leak:
                threading.Thread(target=time.sleep, args=(2,), daemon=True).start()

        def test_decorated():
            job(False)
            with pytest.raises(leakguard.LeakError, match="leakguard: job leaked 1 resource"):
                job(True)
            job(False)
        """
    )
    pytester.runpytest(*QUIET).assert_outcomes(passed=1)


def test_check_works_in_a_unittest_test_case(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import threading, time, unittest
        import leakguard

        class TestService(unittest.TestCase):
            def test_leaks(self):
                with self.assertRaises(leakguard.LeakError):
                    with leakguard.check(trackers=["threads"], grace=0.05):
                        threading.Thread(target=time.sleep, args=(2,), daemon=True).start()

        if __name__ == "__main__":
            unittest.main()
        """
    )
    result = pytester.runpython(pytester.path / "test_it.py")
    assert result.ret == 0, result.stderr.str()
    result.stderr.fnmatch_lines(["OK"])


def test_check_rejects_an_unknown_tracker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import pytest
        import leakguard

        def test_bad():
            with pytest.raises(ValueError, match="trackers: unknown tracker 'thread'"):
                leakguard.check(trackers=["thread"])
        """
    )
    pytester.runpytest(*QUIET).assert_outcomes(passed=1)


COUNTER_TRACKER = """
from leakguard import Tracker, Resource

ITEMS = set()

class Items(Tracker):
    name = "items"
    def snapshot(self, phase):
        return dict.fromkeys(ITEMS)
    def describe(self, key, handle):
        return Resource(self.name, key, "item", repr(key))
    def cleanup(self, resources, timeout):
        for r in resources:
            ITEMS.discard(r.key)
        return ["item removed" for r in resources]

def pytest_leakguard_register_trackers(registry):
    registry.register(Items)
"""


def test_check_inside_pytest_knows_the_trackers_a_conftest_registered(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(COUNTER_TRACKER)
    pytester.makepyfile(
        test_it="""
        import pytest, leakguard, conftest

        def test_block():
            with pytest.raises(leakguard.LeakError, match="item 'x'"):
                with leakguard.check(trackers=["items"], grace=0):
                    conftest.ITEMS.add("x")
            assert conftest.ITEMS == set()
        """
    )
    pytester.runpytest(*QUIET).assert_outcomes(passed=1)


# A tracker whose snapshot fails, in a `leakguard.check()` block of a plain test.
BROKEN_TRACKER_IN_A_CHECK = """
import pytest, leakguard
from leakguard import Tracker
from leakguard.core.registry import TrackerRegistry

class Broken(Tracker):
    name = "broken"
    def snapshot(self, phase):
        raise OSError("no /proc here")

def test_block():
    registry = TrackerRegistry()
    registry.register(Broken)
    block = leakguard.check(trackers=["broken"], grace=0, registry=registry)
    with pytest.warns(leakguard.LeakguardInternalWarning, match="no /proc here"):
        with block:
            pass
    assert [p.tracker for p in block.problems] == ["broken"]
"""


def test_check_outside_pytest_warns_about_a_tracker_fault_instead_of_passing_silently(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_it=BROKEN_TRACKER_IN_A_CHECK)
    # -p no:leakguard: no pytest run of leakguard's is active, as in a plain script.
    pytester.runpytest(*QUIET, "-p", "no:leakguard").assert_outcomes(passed=1)


def test_check_nested_in_a_checked_test_sees_raw_threads(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import _thread, threading, pytest, leakguard

        STOP = threading.Event()

        def test_block():
            with pytest.raises(leakguard.LeakError, match="raw _thread"):
                with leakguard.check(trackers=["threads"], grace=0.05):
                    _thread.start_new_thread(STOP.wait, (2,))
            STOP.set()
        """
    )
    result = pytester.runpytest(
        *QUIET, "--leakguard", "-o", "leakguard_trackers=threads", "-o", "leakguard_grace=1"
    )
    result.assert_outcomes(passed=1)


def test_the_fixture_asked_for_late_checks_the_test_from_then_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import threading, pytest, leakguard

        STOP = threading.Event()

        def test_late(request):
            handle = request.getfixturevalue("leakguard")
            threading.Thread(target=STOP.wait, args=(2,), name="late", daemon=True).start()
            with pytest.raises(leakguard.LeakError, match="thread 'late'"):
                handle.check()
            threading.Thread(target=STOP.wait, args=(2,), name="later", daemon=True).start()
        """
    )
    result = pytester.runpytest(
        *QUIET, "-o", "leakguard_trackers=threads", "-o", "leakguard_grace=0.05"
    )
    assert_leaked(result, "test_it.py::test_late", ["  thread 'later'*"])


def test_check_in_in_process_runs_one_after_another(pytester: pytest.Pytester) -> None:
    # A suite of pytester tests, run the way a plugin author's suite runs: leakguard installed
    # and off in the outer run, inner runs in-process. Each inner run imports leakguard's
    # trackers, and pytester unloads them again after it. The second run used to get the first run's `leakguard.Tracker` (cached on the package)
    # while the registry checked against the class of a fresh copy of its module: "did not
    # return a leakguard.Tracker".
    pytester.makepyfile(
        test_outer=f"""
        pytest_plugins = ["pytester"]

        INNER = {BROKEN_TRACKER_IN_A_CHECK!r}

        def test_three_runs(pytester):
            pytester.makepyfile(test_inner=INNER)
            for _ in range(3):
                result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:leakguard")
                result.assert_outcomes(passed=1)
        """
    )
    pytester.runpytest_subprocess(*QUIET).assert_outcomes(passed=1)

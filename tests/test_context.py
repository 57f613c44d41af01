"""``leakguard.check`` outside the plugin: context manager, decorator, unittest."""

from __future__ import annotations

import pytest

from tests.conftest import QUIET


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
    pytester.makepyfile(
        test_it="""
        import threading, time
        import leakguard

        def test_block():
            with leakguard.check(trackers=["threads"], grace=1.0):
                threading.Thread(target=time.sleep, args=(0.1,)).start()
        """
    )
    pytester.runpytest(*QUIET).assert_outcomes(passed=1)


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

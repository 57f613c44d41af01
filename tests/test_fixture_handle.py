"""The ``leakguard`` fixture's handle: ignore, snapshot, check mid-test."""

from __future__ import annotations

import pytest

from tests.conftest import RunLeakguard
from tests.support.outcomes import assert_leaked
from tests.support.pairs import run_pair


def test_ignore_an_object_lets_that_thread_go(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pair = run_pair(
        pytester,
        lambda: run_leakguard(on=False),
        test_it="""
        import threading, time

        def test_known(leakguard):
            t = threading.Thread(target=time.sleep, args=(2,), name="known", daemon=True)
            t.start()
            leakguard.ignore(t)  # case only
            threading.Thread(target=time.sleep, args=(2,), name="twin", daemon=True).start()
        """,
    )
    assert_leaked(
        pair.control,
        "test_it.py::test_known",
        ["  thread 'known' (daemon)*", "  thread 'twin' (daemon)*"],
    )
    # Only that object goes: its twin (same target, same kind) is still reported.
    assert_leaked(pair.case, "test_it.py::test_known", ["  thread 'twin' (daemon)*"])
    pair.case.stdout.no_fnmatch_line("*thread 'known'*")


def test_ignore_a_pattern_lets_matching_resources_go(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pair = run_pair(
        pytester,
        lambda: run_leakguard(on=False),
        test_it="""
        import threading, time

        def test_known(leakguard):
            leakguard.ignore("threads: 'cache-\\\\d'")  # case only
            leakguard.ignore("'other'")  # case only
            threading.Thread(target=time.sleep, args=(2,), name="cache-1", daemon=True).start()
            threading.Thread(target=time.sleep, args=(2,), name="other", daemon=True).start()
            threading.Thread(target=time.sleep, args=(2,), name="reported", daemon=True).start()
        """,
    )
    assert_leaked(
        pair.control,
        "test_it.py::test_known",
        [
            "  thread 'cache-1' (daemon)*",
            "  thread 'other' (daemon)*",
            "  thread 'reported' (daemon)*",
        ],
    )
    assert_leaked(pair.case, "test_it.py::test_known", ["  thread 'reported' (daemon)*"])


def test_ignore_of_an_unknown_object_says_what_it_accepts(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(
        test_it="""
        import pytest

        def test_odd(leakguard):
            with pytest.raises(TypeError, match="no active tracker knows 42"):
                leakguard.ignore(42)
        """
    )
    run_leakguard(on=False).assert_outcomes(passed=1)


def test_check_mid_test_raises_and_is_not_reported_twice(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(
        test_it="""
        import threading
        import pytest
        import leakguard as lg

        def test_midway(leakguard):
            threading.Timer(30, print).start()
            with pytest.raises(lg.LeakError) as info:
                leakguard.check()
            assert len(info.value.leaks) == 1
            assert info.value.leaks[0].cleanup.endswith("cancelled")
        """
    )
    run_leakguard(on=False).assert_outcomes(passed=1)


def test_snapshot_describes_current_resources(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(
        test_it="""
        def test_look(leakguard):
            found = leakguard.snapshot()
            assert "threads" in found
            assert any(r.label.startswith("'MainThread'") for r in found["threads"])
        """
    )
    run_leakguard(on=False).assert_outcomes(passed=1)

"""ini options, markers, and the precedence order: defaults < ini < CLI < the closest marker."""

from __future__ import annotations

import pytest

from tests.conftest import RunLeakguard
from tests.support.options import QUIET
from tests.support.outcomes import assert_leaked
from tests.support.pairs import Pair, run_pair

LEAK = """
import pytest
from leaky import start_leaky
{marks}
def test_leaky():
    start_leaky()
"""


# Two leaks: what an ignore line names, and a near miss it must not name (a rule that matched
# everything would let both go).
TWO_LEAKS = """
import pytest
from leaky import start_leaky
{marks}
def test_leaky():
    start_leaky()
    start_leaky("other", daemon=True)
"""


def _leaky(pytester: pytest.Pytester, marks: str = "") -> None:
    pytester.makepyfile(test_it=LEAK.format(marks=marks))


def _assert_only_the_near_miss_left(pair: Pair) -> None:
    assert_leaked(
        pair.control,
        "test_it.py::test_leaky",
        ["  thread 'leaky' (non-daemon)*", "  thread 'other' (daemon)*"],
    )
    assert_leaked(pair.case, "test_it.py::test_leaky", ["  thread 'other' (daemon)*"])
    pair.case.stdout.no_fnmatch_line("*thread 'leaky'*")


def _assert_quiet_only_in_the_case(pair: Pair, test: str = "test_it.py::test_leaky") -> None:
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(
        [f"leakguard: {test} leaked 1 resource", "  thread 'leaky' (non-daemon)*"]
    )
    pair.case.assert_outcomes(passed=1)
    pair.case.stdout.no_fnmatch_line("*leakguard: * leaked*")


def test_trackers_option_limits_what_is_checked(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_module: None
) -> None:
    _leaky(pytester)
    result = run_leakguard("-o", "leakguard_trackers=processes", trackers=None)
    result.assert_outcomes(passed=1)


def test_action_warn_issues_a_leak_warning_and_passes(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_module: None
) -> None:
    _leaky(pytester)
    result = run_leakguard("-o", "leakguard_action=warn")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        ["*LeakWarning: leakguard: test_it.py::test_leaky leaked 1 resource*"]
    )
    assert result.ret == 0


def test_action_report_only_writes_the_summary(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_module: None
) -> None:
    _leaky(pytester)
    result = run_leakguard("-o", "leakguard_action=report")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*= leakguard =*",
            "1 owner leaked 1 resource (threads: 1)",
            "test_it.py::test_leaky [[]report]",
        ]
    )


def test_cleanup_false_leaves_the_resource_and_says_so(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(
        test_it="""
        import threading

        def test_timer():
            threading.Timer(2, print).start()
        """
    )
    result = run_leakguard("-o", "leakguard_cleanup=false")
    result.stdout.fnmatch_lines(
        ["cleanup: off (leakguard_cleanup = false); the resources are still there"]
    )


def test_ignore_lines_let_matching_resources_go(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_module: None
) -> None:
    pair = run_pair(
        pytester,
        run_leakguard,
        ini="[pytest]\nleakguard_ignore =\n    threads: 'leaky' \\(non-daemon\\)  # case only\n",
        test_it=TWO_LEAKS.format(marks=""),
    )
    _assert_only_the_near_miss_left(pair)


def test_ignore_lines_for_another_tracker_do_not_match(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_module: None
) -> None:
    pytester.makeini("[pytest]\nleakguard_ignore =\n    processes: leaky\n")
    _leaky(pytester)
    run_leakguard().assert_outcomes(passed=1, errors=1)


def test_traceback_false_hides_where_it_was_started(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_module: None
) -> None:
    _leaky(pytester)
    result = run_leakguard("-o", "leakguard_traceback=false")
    result.stdout.fnmatch_lines(["  thread 'leaky' (non-daemon)   target=time:sleep"])
    result.stdout.no_fnmatch_line("*started at*")


def test_no_resource_tracking_marker_turns_every_tracker_off(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_module: None
) -> None:
    pair = run_pair(
        pytester,
        run_leakguard,
        test_it=LEAK.format(marks="@pytest.mark.no_resource_tracking  # case only"),
    )
    _assert_quiet_only_in_the_case(pair)


def test_no_resource_tracking_with_names_turns_only_those_off(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_module: None
) -> None:
    _leaky(pytester, '@pytest.mark.no_resource_tracking("processes")')
    run_leakguard().assert_outcomes(passed=1, errors=1)
    _leaky(pytester, '@pytest.mark.no_resource_tracking("threads")')
    run_leakguard().assert_outcomes(passed=1)


def test_no_resource_tracking_on_a_class_covers_its_tests(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_module: None
) -> None:
    pair = run_pair(
        pytester,
        run_leakguard,
        test_it="""
        import pytest
        from leaky import start_leaky

        @pytest.mark.no_resource_tracking  # case only
        class TestQuiet:
            def test_a(self):
                start_leaky()
        """,
    )
    _assert_quiet_only_in_the_case(pair, "test_it.py::TestQuiet::test_a")


def test_marker_ignore_adds_to_the_ini_lines(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_module: None
) -> None:
    pytester.makeini("[pytest]\nleakguard_ignore =\n    threads: 'other'\n")
    pair = run_pair(
        pytester,
        run_leakguard,
        test_it="""
        import pytest
        from leaky import start_leaky

        @pytest.mark.leakguard(ignore=["threads: 'leaky'"])  # case only
        def test_leaky():
            start_leaky()
            start_leaky("other", daemon=True)
            start_leaky("near", daemon=True)
        """,
    )
    # The ini line lets 'other' go in both runs; the marker adds 'leaky'; 'near' stays.
    assert_leaked(
        pair.control,
        "test_it.py::test_leaky",
        ["  thread 'leaky' (non-daemon)*", "  thread 'near' (daemon)*"],
    )
    assert_leaked(pair.case, "test_it.py::test_leaky", ["  thread 'near' (daemon)*"])
    for result in (pair.control, pair.case):
        result.stdout.no_fnmatch_line("*thread 'other'*")


def test_marker_grace_gives_a_slow_thread_time_to_end(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pair = run_pair(
        pytester,
        run_leakguard,
        test_it="""
        import threading, time, pytest

        @pytest.mark.leakguard(grace=2.0)  # case only
        def test_slow_finish():
            threading.Thread(target=time.sleep, args=(0.3,), name="slow").start()
        """,
    )
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(["  thread 'slow' (non-daemon)*"])
    pair.case.assert_outcomes(passed=1)


# The precedence matrix: one row per layer combination; the expected action is what happens.
PRECEDENCE = [
    pytest.param(None, None, "", "fail", id="default-is-fail"),
    pytest.param("warn", None, "", "warn", id="ini-over-default"),
    pytest.param("warn", "report", "", "report", id="cli-over-ini"),
    pytest.param(
        "warn", "report", '@pytest.mark.leakguard(action="fail")', "fail", id="marker-over-cli"
    ),
    pytest.param(
        None,
        None,
        'pytestmark = pytest.mark.leakguard(action="warn")',
        "warn",
        id="module-marker-over-default",
    ),
    pytest.param(
        None,
        "report",
        'pytestmark = pytest.mark.leakguard(action="warn")\n@pytest.mark.leakguard(grace=0.01)',
        "warn",
        id="module-marker-key-survives-a-closer-marker-without-it",
    ),
    pytest.param(
        None,
        None,
        'pytestmark = pytest.mark.leakguard(action="warn")\n@pytest.mark.leakguard(action="report")',
        "report",
        id="closest-marker-wins",
    ),
]


@pytest.mark.parametrize(("ini", "cli", "marks", "expected"), PRECEDENCE)
def test_precedence_of_settings(
    pytester: pytest.Pytester,
    run_leakguard: RunLeakguard,
    leaky_module: None,
    ini: str | None,
    cli: str | None,
    marks: str,
    expected: str,
) -> None:
    if ini:
        pytester.makeini(f"[pytest]\nleakguard_action = {ini}\n")
    _leaky(pytester, marks)
    args = ["--leakguard-action", cli] if cli else []
    result = run_leakguard(*args)
    outcomes = {
        "fail": {"passed": 1, "errors": 1},
        "warn": {"passed": 1, "warnings": 1},
        "report": {"passed": 1},
    }
    result.assert_outcomes(**outcomes[expected])
    result.stdout.fnmatch_lines([f"test_it.py::test_leaky [[]{expected}]"])


def test_cli_grace_wins_over_the_ini(pytester: pytest.Pytester) -> None:
    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest("--leakguard", *QUIET, "-o", "leakguard_trackers=threads", *args)

    pair = run_pair(
        pytester,
        run,
        case_args=("--leakguard-grace", "2"),
        ini="[pytest]\nleakguard_grace = 0\n",
        test_it="""
        import threading, time

        def test_slow_finish():
            threading.Thread(target=time.sleep, args=(0.2,), name="slow").start()
        """,
    )
    # The ini's 0 alone fails the thread; the flag's 2 s give it time to end.
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(["  thread 'slow' (non-daemon)*"])
    pair.case.assert_outcomes(passed=1)


def test_settings_are_an_immutable_value_with_a_checked_replace() -> None:
    import copy
    import dataclasses
    import pickle

    from leakguard import Settings

    base = Settings()
    changed = base.replace(grace=0.5, action="warn")
    assert (changed.grace, changed.action, changed.trackers) == (0.5, "warn", base.trackers)
    assert base.grace == 1.0  # the original is untouched
    assert changed == Settings(grace=0.5, action="warn")
    assert changed != base
    assert hash(changed) == hash(Settings(grace=0.5, action="warn"))
    assert pickle.loads(pickle.dumps(changed)) == changed == copy.deepcopy(changed)
    assert repr(changed).startswith("Settings(trackers=(")
    assert "grace=0.5" in repr(changed)
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.grace = 2.0
    with pytest.raises(TypeError, match="no field 'graze'"):
        base.replace(graze=2.0)

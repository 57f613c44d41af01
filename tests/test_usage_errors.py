"""Bad input is a clear error before any test runs, naming the option (or test) and the value."""

from __future__ import annotations

import pytest

from tests.support.options import QUIET
from tests.support.outcomes import assert_usage_error, table


@pytest.mark.parametrize(
    ("args", "message"),
    table(
        {
            "unknown-tracker": (
                ("-o", "leakguard_trackers=threads sokets"),
                "*ini option leakguard_trackers: unknown tracker 'sokets'; known trackers: *",
            ),
            "unknown-tracker-cli": (
                ("--leakguard-trackers", "nope"),
                "*--leakguard-trackers: unknown tracker 'nope'*",
            ),
            "negative-grace": (
                ("-o", "leakguard_grace=-1"),
                "*ini option leakguard_grace: '-1' must be a finite number of seconds >= 0*",
            ),
            "grace-not-a-number": (
                ("--leakguard-grace", "soon"),
                "*--leakguard-grace: 'soon' is not a number of seconds*",
            ),
            "bad-action": (
                ("-o", "leakguard_action=explode"),
                "*ini option leakguard_action: 'explode' is not an action; use one of: fail, warn, report*",
            ),
            "bad-bool": (
                ("-o", "leakguard_cleanup=maybe"),
                "*ini option leakguard_cleanup: 'maybe' is not a boolean*",
            ),
            "broken-regex-cli": (
                ("--leakguard-ignore", "threads: ([unclosed"),
                "*--leakguard-ignore, line 1 ('threads: ([unclosed'): bad regular expression: *",
            ),
            "ignore-without-tracker": (
                ("--leakguard-ignore", "just a regex"),
                "*--leakguard-ignore, line 1 ('just a regex'): expected 'TRACKER: REGEX'*",
            ),
        }
    ),
)
def test_bad_option_value_is_a_usage_error(
    pytester: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    pytester.makepyfile(test_it="def test_ok():\n    pass\n")
    result = pytester.runpytest(*QUIET, "--leakguard", *args)
    assert_usage_error(result, message)


def test_broken_regex_in_the_ini_names_the_line(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nleakguard_ignore =\n    threads: fine\n    tasks: (oops\n")
    pytester.makepyfile(test_it="def test_ok():\n    pass\n")
    result = pytester.runpytest(*QUIET)
    assert_usage_error(
        result,
        "*ini option leakguard_ignore, line 2 ('tasks: (oops'): bad regular expression: "
        "missing ), unterminated subpattern*",
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    table(
        {
            "unknown-argument": (
                "leakguard(gracee=1)",
                "*test_it.py::test_marked: @pytest.mark.leakguard: unknown argument 'gracee'; known: trackers, ignore, grace, action, cleanup, traceback, native_action, garbage_action",
            ),
            "negative-grace": (
                "leakguard(grace=-2)",
                "*test_it.py::test_marked: @pytest.mark.leakguard argument grace=-2: -2 must be a finite number of seconds >= 0",
            ),
            "unknown-tracker": (
                'leakguard(trackers=["threads", "nope"])',
                "*test_it.py::test_marked: @pytest.mark.leakguard argument trackers=*unknown tracker 'nope'*",
            ),
            "cleanup-not-bool": (
                "leakguard(cleanup='no')",
                "*test_it.py::test_marked: @pytest.mark.leakguard argument cleanup='no': expected True or False",
            ),
            "positional": (
                "leakguard(1.0)",
                "*test_it.py::test_marked: @pytest.mark.leakguard takes keyword arguments only, got (1.0,)",
            ),
            "no-tracking-unknown": (
                'no_resource_tracking("thraeds")',
                "*test_it.py::test_marked: @pytest.mark.no_resource_tracking: unknown tracker 'thraeds'*",
            ),
            "marker-broken-regex": (
                'leakguard(ignore=["threads: (["])',
                "*test_it.py::test_marked: @pytest.mark.leakguard argument ignore=*bad regular expression*",
            ),
        }
    ),
)
def test_bad_marker_is_a_collection_error_naming_the_test(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(
        test_it=f"""
        import pytest

        @pytest.mark.{marker}
        def test_marked():
            pass

        def test_other():
            pass
        """
    )
    result = pytester.runpytest(*QUIET, "--leakguard")
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting test_it.py*", message])

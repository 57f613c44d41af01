"""Turning leakguard off for one run while the ini still says ``leakguard = true``."""

from __future__ import annotations

import pytest

from tests.support.options import QUIET

INI = """
[pytest]
leakguard = true
leakguard_grace = 0.05
leakguard_trackers = threads
leakguard_ignore =
    threads: ^thread 'known-noise'
"""

TESTS = """
import threading, pytest
STOP = threading.Event()

def test_leaks():
    threading.Thread(target=STOP.wait, args=(2,), daemon=True).start()

@pytest.mark.leakguard(grace=0.05)
def test_marked_leaks():
    threading.Thread(target=STOP.wait, args=(2,), daemon=True).start()
"""

STRICT = ("--strict-config", "--strict-markers")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    pytester.makepyfile(test_it=TESTS)
    return pytester


def test_p_no_leakguard_alone_fails_under_strict_config(suite: pytest.Pytester) -> None:
    result = suite.runpytest_subprocess(*QUIET, *STRICT, "-p", "no:leakguard")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*Unknown config option: leakguard*"])


def test_p_leakguard_off_keeps_the_ini_markers_and_flags_known_and_checks_nothing(
    suite: pytest.Pytester,
) -> None:
    result = suite.runpytest_subprocess(
        *QUIET, *STRICT, "-p", "no:leakguard", "-p", "leakguard.off", "--leakguard"
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*leakguard: on*")
    # Control: the same run with leakguard loaded checks both tests.
    result = suite.runpytest_subprocess(*QUIET, *STRICT)
    result.assert_outcomes(passed=2, errors=2)


def test_leakguard_off_without_p_no_leakguard_changes_nothing(suite: pytest.Pytester) -> None:
    # Loaded by mistake next to the real plugin: no duplicate options, the plugin still works.
    result = suite.runpytest_subprocess(*QUIET, *STRICT, "-p", "leakguard.off")
    result.assert_outcomes(passed=2, errors=2)


def test_no_leakguard_turns_the_ini_switch_off_but_markers_still_check(
    suite: pytest.Pytester,
) -> None:
    result = suite.runpytest_subprocess(*QUIET, *STRICT, "--no-leakguard")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_marked_leaks*"])

"""What a checked run's start-up leaves out: pytest's assertion rewriter for leakguard's own
modules, and the leak path's dataclasses until something leaks (issue 11, item 6)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.options import QUIET, SHORT_GRACE

# At the run's end: which of leakguard's modules pytest's assertion rewriter was asked to find,
# and whether the leak path's records are dataclasses yet.
PROBE = """
import dataclasses, sys
from _pytest.assertion.rewrite import AssertionRewritingHook

ASKED = []
_find_spec = AssertionRewritingHook.find_spec

def find_spec(self, name, *args, **kwargs):
    if name.startswith("leakguard."):
        ASKED.append(name)
    return _find_spec(self, name, *args, **kwargs)

AssertionRewritingHook.find_spec = find_spec

def pytest_sessionfinish(session):
    print("\\nrewriter asked for leakguard.core.engine:", "leakguard.core.engine" in ASKED)
    tracker = sys.modules["leakguard.core.tracker"]
    origin = sys.modules["leakguard.core.origin"]
    made = [c.__name__ for c in (tracker.Resource, tracker.Conclusion, origin.Origin)
            if dataclasses.is_dataclass(c)]
    print("dataclasses made:", " ".join(made) or "none")
"""

CLEAN = "def test_clean():\n    pass\n"
LEAKY = """
import threading

def test_leaky():
    threading.Thread(target=threading.Event().wait, args=(2.0,), daemon=True).start()
"""


# The control: the finder leakguard put in front taken out again, before the run imports its
# machinery: pytest's rewriter then loads the modules of leakguard's distribution, as any
# plugin's.
NO_FINDER = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "leakguard_own_modules", False)]
"""


@pytest.mark.parametrize("case", ["case", "control"])
def test_leakguards_modules_are_imported_past_the_assertion_rewriter(
    pytester: pytest.Pytester, case: str
) -> None:
    pytester.makeconftest(PROBE + (NO_FINDER if case == "control" else ""))
    pytester.makepyfile(test_it=CLEAN)
    result = pytester.runpytest_subprocess(
        "--leakguard", *QUIET, "-s", "-W", "error::pytest.PytestAssertRewriteWarning", timeout=60
    )
    result.assert_outcomes(passed=1)
    asked = case == "control"
    result.stdout.fnmatch_lines([f"rewriter asked for leakguard.core.engine: {asked}"])
    result.stdout.no_fnmatch_line("*PytestAssertRewriteWarning*")


@pytest.mark.parametrize("case", ["case", "control"])
def test_a_run_that_leaks_nothing_makes_none_of_the_leak_paths_dataclasses(
    pytester: pytest.Pytester, case: str
) -> None:
    pytester.makeconftest(PROBE)
    pytester.makepyfile(test_it=CLEAN if case == "case" else LEAKY)
    result = pytester.runpytest_subprocess(
        "--leakguard", *QUIET, *SHORT_GRACE, "-o", "leakguard_trackers=threads", "-s", timeout=60
    )
    if case == "case":
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["dataclasses made: none"])
    else:  # the leak path made them, and the report is whole
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(["dataclasses made: Resource Conclusion Origin"])
        result.stdout.fnmatch_lines(
            ["*leaked 1 resource*", "*thread*started at test_it.py:4 in test_leaky*"]
        )


@pytest.mark.parametrize(
    ("reach", "expected"),
    [
        ("import leakguard; Resource = leakguard.Resource", "True"),
        # The control: the class as its module defines it, before any instance.
        ("from leakguard.core.tracker import Resource", "False"),
    ],
)
def test_a_record_handed_out_by_the_package_is_a_dataclass_already(
    reach: str, expected: str
) -> None:
    code = f"import dataclasses\n{reach}\nprint(dataclasses.is_dataclass(Resource))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == expected

"""leakguard's own faults are never silent and never change the user's result; bad input is a
usage error at start-up; reports stay readable however much leaked (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import QUIET, SHORT_GRACE, RunLeakguard

RAISING_IN_NEW_SINCE = """
import pytest
from leakguard import Tracker, Resource

class Brittle(Tracker):
    name = "brittle"
    def __init__(self):
        self.calls = 0
    def snapshot(self):
        self.calls += 1
        return dict.fromkeys(range(self.calls))  # something new every time
    def new_since(self, before, after):
        raise KeyError("boom in new_since")
    def describe(self, key, handle):
        return Resource(self.name, key, "thing", str(key))

def pytest_leakguard_register_trackers(registry):
    registry.register(Brittle)

@pytest.fixture(scope="module")
def resource():
    return 42
"""


def test_a_tracker_raising_while_a_module_fixture_is_set_up_is_not_the_users_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(RAISING_IN_NEW_SINCE)
    pytester.makepyfile(test_it="def test_uses(resource):\n    assert resource == 42\n")
    result = pytester.runpytest(*QUIET, *SHORT_GRACE, "--leakguard", "-o", "leakguard_trackers=brittle")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["    leakguard internal problem: tracker 'brittle', new_since (fixture 'resource' *"]
    )


def test_internal_problems_reach_the_summary_under_warnings_as_errors(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(RAISING_IN_NEW_SINCE)
    pytester.makepyfile(test_it="def test_uses(resource):\n    pass\n")
    result = pytester.runpytest(
        *QUIET, *SHORT_GRACE, "--leakguard", "-o", "leakguard_trackers=brittle", "-W", "error"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "internal problems (2; *",
            "*tracker 'brittle', new_since (fixture 'resource'*boom in new_since*it keeps working",
            "*tracker 'brittle', new_since during test_it.py::test_uses*boom in new_since*",
        ]
    )


def test_internal_problems_of_xdist_workers_reach_the_controller_and_the_json(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(RAISING_IN_NEW_SINCE)
    pytester.makepyfile(test_it="def test_uses(resource):\n    pass\n")
    result = pytester.runpytest_subprocess(
        *QUIET, *SHORT_GRACE, "--leakguard", "-o", "leakguard_trackers=brittle", "-n", "2",
        "-o", "leakguard_report=out.json",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*tracker 'brittle'*boom in new_since*"])
    problems = json.loads(Path(pytester.path, "out.json").read_text())["problems"]
    assert [p["tracker"] for p in problems] == ["brittle", "brittle"]
    assert "KeyError" in problems[0]["traceback"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("-o", "leakguard_report=/dev/null/leaks.json"),
            "*leakguard_report: cannot write '/dev/null/leaks.json': cannot make the directory*",
            id="report-path-unwritable",
        ),
        pytest.param(
            ("-o", "leakguard_baseline=missing-dir/base.json"),
            "*leakguard_baseline*the directory*missing-dir* does not exist*",
            id="baseline-directory-missing",
        ),
        pytest.param(
            ("-o", "leakguard_baseline=bad.json"),
            "*cannot read baseline file 'bad.json': entry 1: owner, tracker and description must be strings*",
            id="baseline-malformed",
        ),
    ],
)
def test_bad_files_are_usage_errors_at_start_up(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, args: tuple[str, ...], message: str
) -> None:
    Path(pytester.path, "bad.json").write_text(
        json.dumps({"known": [{"owner": "o", "tracker": ["t"], "description": "d"}]})
    )
    pytester.makepyfile(test_it="def test_ok():\n    pass\n")
    result = run_leakguard(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_report_with_hundreds_of_leaks_stays_short(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(
        test_it="""
        import threading
        STOP = threading.Event()

        def test_many():
            for i in range(60):
                threading.Thread(target=STOP.wait, args=(3,), name=f"t{i}", daemon=True).start()
        """
    )
    result = run_leakguard()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_many leaked 60 resources",
            "  … and 50 more threads (all in the JSON report)",
            "cleanup: thread 't*' still running (threads cannot be stopped); *… and 50 more outcomes",
            "    … and 50 more resources (all in the JSON report)",
        ]
    )
    assert len(result.stdout.lines) < 80, result.stdout.str()

"""leakguard's own faults are never silent and never change the user's result; bad input is a
usage error at start-up; reports stay readable however much leaked (issue 10)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import RunLeakguard
from tests.support.options import QUIET, SHORT_GRACE
from tests.support.outcomes import assert_usage_error, table

RAISING_IN_NEW_SINCE = """
import pytest
from leakguard import Tracker, Resource

class Brittle(Tracker):
    name = "brittle"
    def __init__(self):
        self.calls = 0
    def snapshot(self, phase):
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
    result = pytester.runpytest(
        *QUIET, *SHORT_GRACE, "--leakguard", "-o", "leakguard_trackers=brittle"
    )
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
    table(
        {
            "report-path-unwritable": (
                ("-o", "leakguard_report=/dev/null/leaks.json"),
                "*leakguard_report: cannot write '/dev/null/leaks.json': cannot make the directory*",
            ),
            "baseline-directory-missing": (
                ("-o", "leakguard_baseline=missing-dir/base.json"),
                "*leakguard_baseline*the directory*missing-dir* does not exist*",
            ),
            "baseline-malformed": (
                ("-o", "leakguard_baseline=bad.json"),
                "*cannot read baseline file 'bad.json': entry 1: owner, tracker and description must be strings*",
            ),
        }
    ),
)
def test_bad_files_are_usage_errors_at_start_up(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, args: tuple[str, ...], message: str
) -> None:
    Path(pytester.path, "bad.json").write_text(
        json.dumps({"known": [{"owner": "o", "tracker": ["t"], "description": "d"}]})
    )
    pytester.makepyfile(test_it="def test_ok():\n    pass\n")
    result = run_leakguard(*args)
    assert_usage_error(result, message)


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


EVERY_METHOD_RAISES = """
from leakguard import Tracker, Resource

class Raising(Tracker):
    name = "raising"
    def __init__(self):
        self.calls = 0
    def _maybe(self, method):
        if method == "{method}":
            raise RuntimeError("raised in {method}")
    def install(self):
        self._maybe("install")
    def uninstall(self):
        self._maybe("uninstall")
    def snapshot(self, phase):
        self._maybe("snapshot")
        self.calls += 1
        return dict.fromkeys(range(1 if self.calls == 1 else 2))
    def new_since(self, before, after):
        self._maybe("new_since")
        return super().new_since(before, after)
    def describe(self, key, handle):
        self._maybe("describe")
        return Resource(self.name, key, "thing", str(key))
    def builtin_ignore(self, resource):
        self._maybe("builtin_ignore")
        return None
    def owner_object(self, resource):
        self._maybe("owner_object")
        return object()
    def cleanup(self, resources, timeout):
        self._maybe("cleanup")
        return ["removed" for r in resources]

def pytest_leakguard_register_trackers(registry):
    registry.register(Raising)
"""
METHODS = ["install", "uninstall", "snapshot", "new_since", "describe", "builtin_ignore",
           "owner_object", "cleanup"]  # fmt: skip


@pytest.mark.filterwarnings("ignore:leakguard internal problem")  # raised before capture starts
@pytest.mark.parametrize("method", METHODS)
def test_a_tracker_raising_in_any_method_never_changes_the_users_results(
    pytester: pytest.Pytester, method: str
) -> None:
    pytester.makeconftest(EVERY_METHOD_RAISES.replace("{method}", method))
    pytester.makepyfile(
        test_it="def test_passes():\n    pass\n\ndef test_fails():\n    assert 0\n\ndef test_too():\n    pass\n"
    )
    result = pytester.runpytest(
        *QUIET, *SHORT_GRACE, "--leakguard", "-o", "leakguard_trackers=threads raising"
    )
    outcomes = result.parseoutcomes()
    assert (outcomes.get("passed"), outcomes.get("failed")) == (2, 1), result.stdout.str()
    result.stdout.fnmatch_lines(
        [f"*leakguard internal problem: tracker 'raising', {method}*raised in {method}*"]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_ten_thousand_threads_alive_are_no_problem(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makeconftest(
        """
        import threading, pytest

        @pytest.fixture(scope="session", autouse=True)
        def crowd():
            stop = threading.Event()
            old = threading.stack_size(64 * 1024)
            threads = [threading.Thread(target=stop.wait, daemon=True) for _ in range(10_000)]
            for t in threads:
                t.start()
            threading.stack_size(old)
            yield
            stop.set()
            for t in threads:
                t.join()
        """
    )
    pytester.makepyfile(
        test_it="""
        import threading
        STOP = threading.Event()

        def test_clean():
            pass

        def test_leaks_one():
            threading.Thread(target=STOP.wait, args=(2,), name="the-one", daemon=True).start()

        def test_clean_again():
            STOP.set()
        """
    )
    result = run_leakguard("-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        ["leakguard: test_it.py::test_leaks_one leaked 1 resource", "  thread 'the-one'*"]
    )


def test_running_out_of_descriptors_is_reported_without_breaking_the_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_it="""
        import os

        KEEP = []

        def test_exhausts_descriptors():
            try:
                while True:
                    KEEP.append(open(os.devnull))
            except OSError:
                pass
            KEEP.pop().close()  # one free: pytest itself needs to breathe

        def test_after():
            pass
        """
    )
    script = (
        "import resource, sys, pytest\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))\n"
        "sys.exit(pytest.main(['-p', 'no:cacheprovider', '-p', 'no:randomly', '--leakguard',"
        " '-o', 'leakguard_trackers=fds', '-o', 'leakguard_grace=0.05', 'test_it.py']))\n"
    )
    result = pytester.run(sys.executable, "-c", script)
    result.stdout.fnmatch_lines(
        ["leakguard: test_it.py::test_exhausts_descriptors leaked * resources"]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.stdout.fnmatch_lines(["*2 passed, 1 error*"])


def test_a_test_closing_descriptors_it_did_not_open_does_not_trip_leakguard(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_it="""
        import os
        r, w = os.pipe()  # opened at import, before any test

        def test_closes_what_it_did_not_open():
            os.close(r)
            os.close(w)

        def test_next():
            open(os.devnull).close()
        """
    )
    result = pytester.runpytest(*QUIET, *SHORT_GRACE, "--leakguard")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*internal problem*")

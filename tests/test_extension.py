"""Third-party trackers (conftest hook and entry point), and faults inside a tracker."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.options import QUIET, SHORT_GRACE
from tests.support.pairs import run_pair

# A real third-party tracker, the one docs/how-to/write-a-tracker.md shows.
FILES_TRACKER = (
    Path(__file__).parent.parent / "docs" / "examples" / "spool_tracker.py"
).read_text()

SPOOL_TESTS = """
import os, pathlib

def test_writes_spool():
    pathlib.Path(os.environ["SPOOL_DIR"], "job-1").write_text("x")

def test_after():
    assert os.listdir(os.environ["SPOOL_DIR"]) == []
"""


@pytest.fixture
def spool(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = pytester.mkdir("spool")
    monkeypatch.setenv("SPOOL_DIR", str(folder))
    pytester.makepyfile(spooltracker=FILES_TRACKER, test_spool=SPOOL_TESTS)


def test_conftest_registered_tracker_works_like_a_builtin(
    pytester: pytest.Pytester, spool: None
) -> None:
    pytester.makeconftest(
        """
        from spooltracker import SpoolTracker

        def pytest_leakguard_register_trackers(registry):
            registry.register(SpoolTracker)
        """
    )
    result = pytester.runpytest(
        *QUIET, *SHORT_GRACE, "--leakguard", "-o", "leakguard_trackers=threads spool"
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_spool.py::test_writes_spool leaked 1 resource",
            "  spool 'job-1'",
            "cleanup: spool file job-1 removed",
        ]
    )


def test_entry_point_tracker_is_found_and_named_in_ignore_lines(
    pytester: pytest.Pytester, spool: None
) -> None:
    dist = pytester.mkdir("spool_plugin-1.0.dist-info")
    dist.joinpath("METADATA").write_text(
        "Metadata-Version: 2.1\nName: spool-plugin\nVersion: 1.0\n"
    )
    dist.joinpath("entry_points.txt").write_text(
        "[leakguard.trackers]\nspool = spooltracker:SpoolTracker\n"
    )

    def run(*args: str) -> pytest.RunResult:
        return pytester.runpytest_subprocess(
            *QUIET, *SHORT_GRACE, "--leakguard", "-o", "leakguard_trackers=spool", *args
        )

    pair = run_pair(
        pytester,
        run,
        case_args=("-o", "leakguard_ignore=spool: job-\\d"),
        test_spool="""
        import os, pathlib

        def test_writes_spool():
            pathlib.Path(os.environ["SPOOL_DIR"], "job-1").write_text("x")
            pathlib.Path(os.environ["SPOOL_DIR"], "draft-1").write_text("x")  # a near miss

        def test_after():
            assert os.listdir(os.environ["SPOOL_DIR"]) == ["job-1"]
        """,
    )
    # Control: both files leaked and removed (test_after then misses job-1).
    pair.control.assert_outcomes(passed=1, failed=1, errors=1)
    pair.control.stdout.fnmatch_lines(["*test_writes_spool leaked 2 resources"])
    # The ignore line, naming the entry point's tracker, lets job-1 go and stay; not draft-1.
    pair.case.assert_outcomes(passed=2, errors=1)
    pair.case.stdout.fnmatch_lines(
        [
            "*test_writes_spool leaked 1 resource",
            "  spool 'draft-1'",
            "cleanup: spool file draft-1 removed",
        ]
    )


def _entry_point(pytester: pytest.Pytester, line: str) -> None:
    dist = pytester.mkdir("spool_plugin-1.0.dist-info")
    dist.joinpath("METADATA").write_text(
        "Metadata-Version: 2.1\nName: spool-plugin\nVersion: 1.0\n"
    )
    dist.joinpath("entry_points.txt").write_text(f"[leakguard.trackers]\n{line}\n")


def test_unknown_tracker_error_lists_the_entry_point_trackers(
    pytester: pytest.Pytester, spool: None
) -> None:
    # The entry points are read lazily (start-up): listing the names must still read them.
    _entry_point(pytester, "spool = spooltracker:SpoolTracker")
    result = pytester.runpytest_subprocess(*QUIET, "--leakguard", "-o", "leakguard_trackers=nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown tracker 'nope'; known trackers: *spool*"])


def test_entry_point_named_like_a_builtin_does_not_replace_it(
    pytester: pytest.Pytester, spool: None
) -> None:
    _entry_point(pytester, "threads = spooltracker:SpoolTracker")
    pytester.makepyfile(
        test_thread="""
        import threading

        def test_leaks_a_thread():
            threading.Thread(target=threading.Event().wait, args=(3,), daemon=True).start()
        """
    )
    result = pytester.runpytest_subprocess(
        *QUIET, *SHORT_GRACE, "--leakguard", "-o", "leakguard_trackers=threads", "test_thread.py"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["  thread *"])


FAULTY = """
from leakguard import Tracker, Resource

class Faulty(Tracker):
    name = "faulty"

    def __init__(self):
        self.calls = 0

    def snapshot(self, phase):
        self.calls += 1
        if "{mode}" == "snapshot":
            raise OSError("cannot read /proc today")
        # One new resource appears after the first snapshot, and stays.
        return dict.fromkeys(range(1 if self.calls == 1 else 2))

    def describe(self, key, handle):
        return Resource(self.name, key, "thing", str(key))

    def cleanup(self, resources, timeout):
        raise RuntimeError("cleanup exploded")

def pytest_leakguard_register_trackers(registry):
    registry.register(Faulty)
"""


FAULTY_TESTS = """
def test_passes():
    pass

def test_fails():
    assert 1 == 2

def test_passes_too():
    pass
"""


def test_a_tracker_whose_snapshot_keeps_failing_is_disabled_and_the_summary_says_from_where(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(FAULTY.format(mode="snapshot"))
    pytester.makepyfile(test_it=FAULTY_TESTS)
    result = pytester.runpytest(
        *QUIET, *SHORT_GRACE, "--leakguard", "-o", "leakguard_trackers=threads faulty"
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "internal problems (2; leakguard's own faults, your results stand; tracebacks in the JSON report):",
            "    leakguard internal problem: tracker 'faulty', snapshot during test_it.py::test_passes: "
            "OSError: cannot read /proc today; it keeps working",
            # Three failed snapshots in a row (one per test here: a failed one leaves nothing
            # to compare at teardown) before the tracker is switched off.
            "    leakguard internal problem: tracker 'faulty', snapshot during test_it.py::test_passes_too: "
            "OSError: cannot read /proc today; disabled: blind from test_it.py::test_passes_too on",
        ]
    )


def test_a_failing_cleanup_is_recorded_against_its_resources_and_the_tracker_keeps_working(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(FAULTY.format(mode="cleanup"))
    pytester.makepyfile(test_it=FAULTY_TESTS)
    result = pytester.runpytest(
        *QUIET, *SHORT_GRACE, "--leakguard", "-o", "leakguard_trackers=threads faulty"
    )
    result.assert_outcomes(passed=2, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "cleanup: thing 1: cleanup failed (RuntimeError: cleanup exploded)",
            "residue (cleanup could not remove 1 resource):",
            "    leakguard internal problem: tracker 'faulty', cleanup during test_it.py::test_passes: "
            "RuntimeError: cleanup exploded; it keeps working",
        ]
    )
    result.stdout.no_fnmatch_line("*residue: none*")
    result.stdout.no_fnmatch_line("*disabled*")

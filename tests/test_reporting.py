"""The report's text, the terminal summary, the JSON report, residue notes, and pytest-xdist."""

from __future__ import annotations

import fnmatch
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunLeakguard
from tests.support.options import QUIET, SHORT_GRACE
from tests.support.outcomes import assert_usage_error
from tests.support.pairs import run_pair

# One leaking test and one clean one: the file most report tests need.
LEAK_AND_CLEAN = """
import threading
STOP = threading.Event()

def test_clean():
    pass

def test_leaks():
    threading.Thread(target=STOP.wait, args=(2,), name="w", daemon=True).start()
"""

TWO_LEAKS = """
import threading, time

def test_clean():
    pass

def test_two_threads():
    threading.Thread(target=time.sleep, args=(2,), name="a", daemon=True).start()
    threading.Timer(30, print).start()
"""


def run_xdist(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """The threads tracker under two xdist workers (a subprocess: xdist starts its own)."""
    return pytester.runpytest_subprocess(
        *QUIET, *SHORT_GRACE, "--leakguard", "-o", "leakguard_trackers=threads", "-n", "2", *args
    )


def test_json_report_holds_every_leak(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(test_it=TWO_LEAKS)
    result = run_leakguard("-o", "leakguard_report=out/leaks.json")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["JSON report: out/leaks.json"])
    data = json.loads(Path(pytester.path, "out/leaks.json").read_text())
    assert data["totals"] == {"threads": 2}
    (finding,) = data["findings"]
    assert finding["owner"] == "test_it.py::test_two_threads"
    assert finding["action"] == "fail"
    by_line = {leak["origin"]["lineno"]: leak["description"] for leak in finding["leaks"]}
    assert by_line[7] == "thread 'a' (daemon) target=time:sleep"
    assert by_line[8].startswith("thread 'Thread-")
    assert "(non-daemon, Timer)" in by_line[8]
    assert [r["description"] for r in finding["residue"]] == [
        "thread 'a' (daemon) target=time:sleep"
    ]


def test_clean_run_prints_no_leakguard_section(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pair = run_pair(
        pytester,
        lambda: run_leakguard("-o", "leakguard_report=leaks.json"),
        test_it="""
        import threading
        STOP = threading.Event()

        def test_ok():
            threading.Thread(target=STOP.wait, args=(2,), name="w", daemon=True).start()  # control only
            pass
        """,
    )
    # Control: one leak, and the section says so.
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(["*= leakguard =*", "1 owner leaked 1 resource (threads: 1)"])
    # The case wrote its JSON over the control's.
    pair.case.assert_outcomes(passed=1)
    pair.case.stdout.no_fnmatch_line("*= leakguard =*")
    assert json.loads(Path(pytester.path, "leaks.json").read_text())["findings"] == []


def test_summary_lists_owners_counts_cleanup_and_residue(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(test_it=TWO_LEAKS)
    result = run_leakguard()
    result.stdout.fnmatch_lines(
        [
            "*= leakguard =*",
            "1 owner leaked 2 resources (threads: 2)",
            "test_it.py::test_two_threads [[]fail]",
            "    thread * -> Timer * cancelled",
            "    thread 'a' (daemon) target=time:sleep -> thread 'a' still running (threads cannot be stopped)",
            "residue (cleanup could not remove 1 resource):",
            "    thread 'a' (daemon) target=time:sleep (from test_it.py::test_two_threads)",
        ]
    )


def test_failing_test_says_it_ran_with_residue(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(
        test_it="""
        import threading, time

        def test_leaves_a_thread():
            threading.Thread(target=time.sleep, args=(2,), name="stuck", daemon=True).start()

        def test_fails_later():
            assert False
        """
    )
    result = run_leakguard()
    result.assert_outcomes(failed=1, passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*- leakguard -*",
            "ran with residue from earlier tests (1 resource): thread 'stuck' (daemon) target=time:sleep (from test_it.py::test_leaves_a_thread)",
        ]
    )


def test_the_residue_note_follows_the_residue_from_test_to_test(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    # Every failing test that starts with the residue gets the note (made when it is shown);
    # once the residue is gone, the next failing test has none.
    pytester.makepyfile(
        test_it="""
        import threading

        RELEASE = threading.Event()
        STUCK = []

        def test_leaves_a_thread():
            thread = threading.Thread(target=RELEASE.wait, name="stuck", daemon=True)
            thread.start()
            STUCK.append(thread)

        def test_fails_first():
            assert False, "first"

        def test_fails_second():
            assert False, "second"

        def test_releases():
            RELEASE.set()
            STUCK[0].join()

        def test_fails_after():
            assert False, "after"
        """
    )
    result = run_leakguard("-p", "no:randomly")
    result.assert_outcomes(failed=3, passed=2, errors=1)
    note = "ran with residue from earlier tests (1 resource): thread 'stuck' (daemon)*"
    out = result.stdout.str()
    sections = out.split("___ test_")
    by_test = {part.split(" ")[0]: part for part in sections[1:]}
    for name in ("fails_first", "fails_second"):
        assert fnmatch.fnmatch(by_test[name], f"*{note}*"), by_test[name]
    assert "ran with residue" not in by_test["fails_after"], by_test["fails_after"]


def test_users_teardown_error_is_not_hidden_by_a_leak(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(
        test_it="""
        import threading, time, pytest

        @pytest.fixture
        def broken():
            yield
            raise RuntimeError("the user's own teardown bug")

        def test_it(broken):
            threading.Thread(target=time.sleep, args=(2,), daemon=True).start()
        """
    )
    result = run_leakguard()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*RuntimeError: the user's own teardown bug*", "*= leakguard =*"])


def test_xdist_workers_fail_their_own_tests_and_the_controller_summarizes(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_a="""
        import threading, time

        def test_a_leaks():
            threading.Thread(target=time.sleep, args=(2,), name="from-a", daemon=True).start()

        def test_a_clean():
            pass
        """,
        test_b="""
        import threading, time

        def test_b_leaks():
            threading.Thread(target=time.sleep, args=(2,), name="from-b", daemon=True).start()
        """,
    )
    result = run_xdist(pytester, "-o", "leakguard_report=leaks.json")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(["*= leakguard =*", "2 owners leaked 2 resources (threads: 2)"])
    data = json.loads(Path(pytester.path, "leaks.json").read_text())
    owners = sorted(f["owner"] for f in data["findings"])
    assert owners == ["test_a.py::test_a_leaks", "test_b.py::test_b_leaks"]


BASELINE_SUITE = """
import threading, time

def test_old_leak():
    threading.Timer(30, print).start()

def test_clean():
    pass
"""


def test_baseline_turns_known_leaks_into_reports_and_new_ones_still_fail(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(test_it=BASELINE_SUITE)
    first = run_leakguard("--leakguard-baseline", "known.json", "--leakguard-update-baseline")
    first.stdout.fnmatch_lines(["baseline written: 1 known leaks in known.json"])
    data = json.loads(Path(pytester.path, "known.json").read_text())
    assert data["known"] == [
        {
            "owner": "test_it.py::test_old_leak",
            "tracker": "threads",
            "description": "thread 'Thread-#' (non-daemon, Timer) target=threading:Timer.run",
        }
    ]

    again = run_leakguard("--leakguard-baseline", "known.json")
    again.assert_outcomes(passed=2)
    again.stdout.fnmatch_lines(["test_it.py::test_old_leak [[]baseline]"])
    assert again.ret == 0

    pytester.makepyfile(
        test_it=BASELINE_SUITE.replace("pass", "threading.Timer(30, print).start()")
    )
    newer = run_leakguard("--leakguard-baseline", "known.json")
    newer.assert_outcomes(passed=2, errors=1)
    newer.stdout.fnmatch_lines(["*ERROR at teardown of test_clean*"])


def test_unreadable_baseline_is_a_usage_error(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(test_it="def test_ok():\n    pass\n")
    Path(pytester.path, "known.json").write_text("{not json")
    result = run_leakguard("-o", "leakguard_baseline=known.json")
    assert_usage_error(result, "*leakguard_baseline: cannot read baseline file 'known.json'*")


def test_a_leak_report_ends_with_the_command_that_reproduces_it(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(test_it=LEAK_AND_CLEAN)
    result = run_leakguard()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["cleanup: *", "reproduce: pytest test_it.py::test_leaks --leakguard"]
    )
    result.stdout.no_fnmatch_line("*-n 0*")


def test_the_reproduce_line_names_the_test_as_typed_where_pytest_was_started(
    pytester: pytest.Pytester,
) -> None:
    # The rootdir is sub/ (its pytest.ini), pytest is started one level up: node ids are
    # relative to sub/, the command must name sub/test_it.py.
    sub = pytester.mkdir("sub")
    (sub / "pytest.ini").write_text("[pytest]\n")
    (sub / "test_it.py").write_text(textwrap.dedent(LEAK_AND_CLEAN))
    args = ("--leakguard", *QUIET, *SHORT_GRACE, "-o", "leakguard_trackers=threads")
    result = pytester.runpytest_subprocess(*args, "sub")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["reproduce: pytest sub/test_it.py::test_leaks --leakguard"])
    # The line, run where it was printed, reproduces the leak alone.
    again = pytester.runpytest_subprocess(*args, "sub/test_it.py::test_leaks")
    again.assert_outcomes(passed=1, errors=1)


def test_the_reproduce_line_runs_in_one_process_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_it=LEAK_AND_CLEAN)
    result = run_xdist(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["reproduce: pytest test_it.py::test_leaks --leakguard -n 0"])


def test_the_reproduce_line_names_the_tests_whose_residue_was_present(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(
        test_it="""
        import threading
        STOP = threading.Event()

        def test_first():
            threading.Thread(target=STOP.wait, args=(3,), name="w1", daemon=True).start()

        def test_second():
            threading.Thread(target=STOP.wait, args=(3,), name="w2", daemon=True).start()
        """
    )
    result = run_leakguard()
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        ["reproduce: pytest test_it.py::test_first test_it.py::test_second --leakguard"]
    )


def test_the_reproduce_line_names_at_most_the_three_nearest_earlier_tests(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    # Five tests each leave a thread running: every later one ran with the residue of all the
    # earlier ones, but its line stays short.
    pytester.makepyfile(
        test_it="""
        import threading
        import pytest
        STOP = threading.Event()

        @pytest.mark.parametrize("n", range(5))
        def test_leaks(n):
            threading.Thread(target=STOP.wait, args=(3,), daemon=True).start()
        """
    )
    result = run_leakguard()
    result.assert_outcomes(passed=5, errors=5)
    lines = [line for line in result.outlines if line.startswith("reproduce: ")]
    assert lines[-1] == (
        "reproduce: pytest 'test_it.py::test_leaks[1]' 'test_it.py::test_leaks[2]' "
        "'test_it.py::test_leaks[3]' 'test_it.py::test_leaks[4]' --leakguard"
        "  (and 1 earlier test(s) whose residue was present, not named)"
    )
    assert lines[3].endswith("'test_it.py::test_leaks[3]' --leakguard")


def test_junit_xml_carries_each_leak_as_a_property_of_its_test_case(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(test_it=LEAK_AND_CLEAN)
    result = run_leakguard("--junitxml=junit.xml")
    result.assert_outcomes(passed=2, errors=1)
    import xml.etree.ElementTree as ET

    root = ET.parse(pytester.path / "junit.xml").getroot()
    properties = {
        case.get("name"): [(p.get("name"), p.get("value")) for p in case.iter("property")]
        for case in root.iter("testcase")
    }
    assert properties["test_leaks"] == [
        ("leakguard", "[fail] leak: thread 'w' (daemon) target=threading:Event.wait")
    ]
    assert properties["test_clean"] == []


def test_stats_show_what_leakguard_cost_and_the_slowest_flagged_tests(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(test_it=LEAK_AND_CLEAN)
    result = run_leakguard("--leakguard-stats", "-o", "leakguard_report=out.json")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leakguard's own cost: * ms over 2 checked tests",
            "    clean path (snapshots and compare, every checked test) * ms (* µs per test)",
            "    leak path: snapshots, polls, report (loading it once) * ms",
            "    grace waits *",
            "    slowest flagged (leak path):",
            "        * ms  test_it.py::test_leaks",
        ]
    )
    stats = json.loads(Path(pytester.path, "out.json").read_text())["stats"]
    assert stats["tests"] == 2
    assert list(stats["flagged"]) == ["test_it.py::test_leaks"]
    # Control: without the flag, no stats.
    result = run_leakguard()
    result.stdout.no_fnmatch_line("*leakguard's own cost*")


def test_stats_name_the_tests_whose_leak_path_cost_time_but_found_nothing(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    """A thread that ends 50 ms after its test is no leak, but leakguard waited for it: the
    stats name that test, so a user can see where a slow run's time went."""
    pytester.makepyfile(
        test_it="""
        import threading, time

        def test_late_thread():
            threading.Thread(target=time.sleep, args=(0.05,), name="late").start()

        def test_clean():
            pass
        """
    )
    # A grace far past the thread's 50 ms: on a loaded machine 50 ms of grace (the suite's
    # short default) was not always enough, and the late thread became a leak.
    result = run_leakguard(
        "--leakguard-stats", "-o", "leakguard_report=out.json", "-o", "leakguard_grace=2"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "    slowest not flagged (1 tests took the leak path and had nothing to report, *",
            "        * ms  test_it.py::test_late_thread",
        ]
    )
    stats = json.loads(Path(pytester.path, "out.json").read_text())["stats"]
    assert list(stats["unflagged"]) == ["test_it.py::test_late_thread"]
    assert stats["unflagged"]["test_it.py::test_late_thread"] > 0
    # Control: the same run without the late thread has no such list.
    pytester.makepyfile(test_it="def test_clean():\n    pass\n")
    result = run_leakguard("--leakguard-stats")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*slowest not flagged*")


def test_stats_count_the_search_for_a_descriptors_owner_as_an_owner_search(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    """Finding which Python object holds a leaked descriptor is a walk over the heap, the
    costliest step of a descriptor's leak path: it is an owner search, never clean path."""
    pytester.makepyfile(
        test_it="""
        import os

        def test_bare_number():
            os.open(os.devnull, os.O_RDONLY)  # no Python object holds it
        """
    )
    result = run_leakguard(
        "--leakguard-stats", "-o", "leakguard_report=out.json", "-o", "leakguard_trackers=fds"
    )
    result.assert_outcomes(passed=1, errors=1)
    seconds = json.loads(Path(pytester.path, "out.json").read_text())["stats"]["seconds"]
    assert seconds["owners"] > 0
    # Control: a clean test searches for nothing.
    pytester.makepyfile(test_it="def test_clean():\n    pass\n")
    result = run_leakguard(
        "--leakguard-stats", "-o", "leakguard_report=out.json", "-o", "leakguard_trackers=fds"
    )
    result.assert_outcomes(passed=1)
    seconds = json.loads(Path(pytester.path, "out.json").read_text())["stats"]["seconds"]
    assert seconds["owners"] == 0
    assert seconds["clean"] > 0


def test_stats_count_the_grace_a_runner_gave_a_tests_tasks_as_that_tests_wait(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    """Before ``asyncio.run`` cancels the tasks a test left, leakguard runs the loop so they can
    finish within the grace: that wait happens inside the test, not in leakguard's check, and
    the stats count it all the same."""
    pytester.makepyfile(
        test_it="""
        import asyncio

        async def main():
            asyncio.get_running_loop().create_task(asyncio.sleep(0.05))

        def test_leaves_a_task_that_ends_soon():
            asyncio.run(main())
        """
    )
    stats = _tasks_stats(pytester, run_leakguard)
    assert stats["seconds"]["grace"] >= 0.04
    assert list(stats["unflagged"]) == ["test_it.py::test_leaves_a_task_that_ends_soon"]
    # Control: a task awaited in time leaves nothing to wait for.
    pytester.makepyfile(
        test_it="""
        import asyncio

        async def main():
            await asyncio.get_running_loop().create_task(asyncio.sleep(0.05))

        def test_awaits_its_task():
            asyncio.run(main())
        """
    )
    stats = _tasks_stats(pytester, run_leakguard)
    assert stats["seconds"]["grace"] == 0
    assert stats["unflagged"] == {}


def _tasks_stats(pytester: pytest.Pytester, run_leakguard: RunLeakguard) -> dict[str, Any]:
    """The stats of a run of the one passing test in ``test_it.py``, tasks tracker only (a grace
    far past the 50 ms its tasks take: on a loaded machine the suite's short one was not)."""
    result = run_leakguard(
        "--leakguard-stats",
        *("-o", "leakguard_report=out.json", "-o", "leakguard_trackers=tasks"),
        *("-o", "leakguard_grace=2"),
    )
    result.assert_outcomes(passed=1)
    stats: dict[str, Any] = json.loads(Path(pytester.path, "out.json").read_text())["stats"]
    return stats


def test_stats_of_xdist_workers_are_added_up_by_the_controller(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_it=LEAK_AND_CLEAN)
    result = run_xdist(pytester, "--leakguard-stats")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["leakguard's own cost: * ms over 2 checked tests"])


def test_a_test_failing_with_address_in_use_names_the_earlier_test_that_holds_the_port(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_it="""
        import socket
        KEEP = []

        def test_start_server():
            s = socket.create_server(("127.0.0.1", 0))
            KEEP.append(s)
            with open("port", "w") as f:
                f.write(str(s.getsockname()[1]))

        def test_next_server():
            port = int(open("port").read())
            socket.create_server(("127.0.0.1", port))
        """
    )
    result = pytester.runpytest(
        *QUIET,
        *SHORT_GRACE,
        "--leakguard",
        "-o",
        "leakguard_trackers=ports",
        "--leakguard-no-cleanup",
    )
    result.assert_outcomes(passed=1, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*- leakguard -*",
            "ran with residue from earlier tests (1 resource): port tcp 127.0.0.1:* LISTEN (from test_it.py::test_start_server)",
            "port * is held by a socket leaked by test_it.py::test_start_server (opened at test_it.py:5 in test_start_server)",
        ]
    )


def test_a_baseline_recorded_in_one_process_holds_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import threading
        KEEP = []

        def test_leaks_a_file(tmp_path):
            KEEP.append(open(tmp_path / "data.log", "w"))

        def test_leaks_a_thread():
            stop = threading.Event()
            threading.Thread(target=stop.wait, args=(2,), name="w", daemon=True).start()
        """
    )
    base = ("--leakguard", "-o", "leakguard_trackers=threads fds", "-o", "leakguard_grace=0.05",
            "-p", "no:randomly", "--leakguard-baseline", "base.json")  # fmt: skip
    pytester.runpytest_subprocess(*base, "--leakguard-update-baseline").assert_outcomes(
        passed=2, errors=2
    )
    for extra in (("-n", "2"), ("-k", "file"), ("-p", "no:cacheprovider")):
        result = pytester.runpytest_subprocess(*base, *extra)
        assert result.ret == pytest.ExitCode.OK, (extra, result.stdout.str())
        result.stdout.fnmatch_lines(["*[[]baseline[]]"])

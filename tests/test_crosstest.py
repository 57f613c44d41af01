"""Cross-test attribution: what a thread an earlier test left makes later is that test's."""

from __future__ import annotations

import pytest

from tests.support.options import QUIET, SHORT_GRACE

# test_start leaves a thread that, once test_start has ended, makes something (a thread, a
# file) while test_next runs; test_next itself is clean.
LATE = """
import threading, time
STOP = threading.Event()
NEXT_RUNS = threading.Event()
MADE = threading.Event()
KEEP = []

def later(make):
    NEXT_RUNS.wait(10)  # made while test_next runs, however loaded the machine
    make()
    MADE.set()
    STOP.wait(4)

def start_child():
    threading.Thread(target=STOP.wait, args=(4,), name="late-child", daemon=True).start()

def open_file():
    KEEP.append(open("late.log", "w"))

def spawn():
    import subprocess
    KEEP.append(subprocess.Popen(["sleep", "4"]))

def start_task():
    import asyncio
    loop = asyncio.new_event_loop()  # nobody runs it: the task stays pending
    KEEP.append((loop, loop.create_task(asyncio.sleep(4), name="late-task")))

def test_start():
    threading.Thread(target=later, args=({make},), name="parent", daemon=True).start()

def test_next():
    NEXT_RUNS.set()
    MADE.wait(10)
    {next_body}
"""


def _run(pytester: pytest.Pytester, trackers: str, *extra: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--leakguard", *QUIET, *SHORT_GRACE, "-o", f"leakguard_trackers={trackers}", *extra
    )


@pytest.mark.parametrize(
    ("make", "trackers", "row"),
    [
        pytest.param(
            "start_child", "threads",
            "    thread 'late-child' (daemon) target=threading:Event.wait -> left as is "
            "(created during test_it.py::test_start, seen after test_it.py::test_next; "
            "its test had ended)",
            id="thread",
        ),
        pytest.param(
            "open_file", "threads fds",
            "    fd * file */late.log (mode w) -> left as is "
            "(created during test_it.py::test_start, seen after test_it.py::test_next; "
            "its test had ended)",
            id="file",
        ),
        pytest.param(
            "spawn", "threads processes",
            "    process * 'sleep 4' * -> left as is "
            "(created during test_it.py::test_start, seen after test_it.py::test_next; "
            "its test had ended)",
            id="process",
        ),
        pytest.param(
            "start_task", "threads tasks",
            # The loop it made too: before, it was blamed on test_next and closed under its thread.
            "    task 'late-task' coro=asyncio.tasks:sleep * -> left as is "
            "(created during test_it.py::test_start, seen after test_it.py::test_next; "
            "its test had ended)",
            id="task",
        ),
    ],
)  # fmt: skip
@pytest.mark.parametrize("xdist", [(), ("-n", "1")], ids=["one-process", "xdist"])
def test_what_an_earlier_tests_thread_makes_later_is_blamed_on_that_test(
    pytester: pytest.Pytester, make: str, trackers: str, row: str, xdist: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_it=LATE.format(make=make, next_body="pass"))
    result = _run(pytester, trackers, *xdist)
    # test_start errors for its thread 'parent'; test_next passes: it is not blamed.
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*= leakguard =*",
            "test_it.py::test_start [[]fail]",
            "    thread 'parent' *",
            "test_it.py::test_start [[]report]",
            row,
        ]
    )
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_next*")
    # Control: the same thing made by test_next's own code is test_next's leak.
    pytester.makepyfile(test_it=LATE.format(make="print", next_body=f"{make}()"))
    result = _run(pytester, trackers, *xdist)
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_next*"])


def test_a_late_leak_in_the_baseline_is_marked_known(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_it=LATE.format(make="start_child", next_body="pass"))
    base = ("--leakguard-baseline", "base.json")
    _run(pytester, "threads", *base, "--leakguard-update-baseline").assert_outcomes(
        passed=2, errors=1
    )
    result = _run(pytester, "threads", *base)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["test_it.py::test_start [[]baseline]", "    thread 'late-child' *"]
    )
    result.stdout.no_fnmatch_line("*[[]report]*")


def test_what_an_earlier_tests_thread_makes_between_two_checked_tests_is_blamed_on_it(
    pytester: pytest.Pytester,
) -> None:
    # Made while no checked test runs (here, during an unchecked one; in real runs, during the
    # earlier test's own leak path): it is already there when the next test's snapshot is taken.
    pytester.makepyfile(
        test_it="""
        import threading, time, pytest
        STOP = threading.Event()

        def later():
            time.sleep(0.2)
            threading.Thread(target=STOP.wait, args=(3,), name="late-child", daemon=True).start()
            STOP.wait(3)

        @pytest.mark.leakguard(ignore=["threads: 'parent'"])
        def test_start():
            threading.Thread(target=later, name="parent", daemon=True).start()

        @pytest.mark.no_resource_tracking
        def test_unchecked():
            time.sleep(0.5)

        def test_next():
            pass
        """
    )
    result = _run(pytester, "threads")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "test_it.py::test_start [[]report]",
            "    thread 'late-child' (daemon) target=threading:Event.wait -> left as is "
            "(created during test_it.py::test_start, seen after its check; its test had ended)",
        ]
    )

"""The timeline in the JSON report: counts after each checked test, leaks, residue, polluters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.options import QUIET, SHORT_GRACE


def run_timeline(pytester: pytest.Pytester, trackers: str, *args: str) -> list[dict[str, Any]]:
    """Run in a subprocess (exact counts need a process no earlier test left threads in)."""
    pytester.runpytest_subprocess(
        *QUIET, *SHORT_GRACE, "--leakguard", "-o", f"leakguard_trackers={trackers}",
        "-o", "leakguard_report=out.json", *args,
    )  # fmt: skip
    points: list[dict[str, Any]] = json.loads(Path(pytester.path, "out.json").read_text())[
        "timeline"
    ]
    return points


THREAD_LEAK = """
import threading, time

def test_before():
    pass

def test_leaks_a_thread():
    threading.Thread(target=time.sleep, args=(30,), name="left", daemon=True).start()

def test_after():
    pass
"""


def test_a_leaked_thread_raises_the_count_from_its_test_on_and_stays_as_residue(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_it=THREAD_LEAK)
    points = run_timeline(pytester, "threads")
    assert [(p["index"], p["test"]) for p in points] == [
        (0, "test_it.py::test_before"),
        (1, "test_it.py::test_leaks_a_thread"),
        (2, "test_it.py::test_after"),
    ]
    base = points[0]["counts"]["threads"]
    assert [p["counts"] for p in points] == [
        {"threads": base},
        {"threads": base + 1},  # threads cannot be stopped: it is still there
        {"threads": base + 1},
    ]
    assert [p["worker"] for p in points] == ["", "", ""]
    before, leaky, after = points
    assert (before["outcome"], before["error_at_teardown"], before["leaks"]) == (
        "passed",
        False,
        [],
    )
    assert (leaky["outcome"], leaky["error_at_teardown"]) == ("passed", True)
    (leak,) = leaky["leaks"]
    assert leak["description"] == "thread 'left' (daemon) target=time:sleep"
    assert (leak["tracker"], leak["category"], leak["action"], leak["residue"]) == (
        "threads", "leak", "fail", True,
    )  # fmt: skip
    assert leak["origin"] == "test_it.py:7 in test_leaks_a_thread"
    assert leaky["report"].startswith(
        "leakguard: test_it.py::test_leaks_a_thread leaked 1 resource"
    )
    assert after["residue"] == [
        {
            "owner": "test_it.py::test_leaks_a_thread",
            "tracker": "threads",
            "description": "thread 'left' (daemon) target=time:sleep",
        }
    ]
    assert before["residue"] == leaky["residue"] == []


FILE_LEAK = """
kept = []

def test_before():
    pass

def test_leaks_a_file(tmp_path):
    kept.append(open(tmp_path / "data.log", "w"))

def test_after():
    pass
"""


@pytest.mark.parametrize(
    ("cleanup", "left_open"),
    [pytest.param("--leakguard-cleanup", 0, id="cleaned-up"),
     pytest.param("--leakguard-no-cleanup", 1, id="left-as-residue")],
)  # fmt: skip
def test_the_count_after_a_leaking_test_is_what_cleanup_left(
    pytester: pytest.Pytester, cleanup: str, left_open: int
) -> None:
    pytester.makepyfile(test_it=FILE_LEAK)
    points = run_timeline(pytester, "fds", cleanup)
    base = points[0]["counts"]["fds"]
    assert [p["counts"]["fds"] for p in points] == [base, base + left_open, base + left_open]
    (leak,) = points[1]["leaks"]
    assert leak["description"].endswith("data.log (mode w)")
    assert leak["residue"] is bool(left_open)
    assert len(points[2]["residue"]) == left_open


POLLUTER = """
import socket

held = []

def test_starts_a_server():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held.append(server)

def test_unrelated():
    pass

def test_binds_the_same_port():
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", held[0].getsockname()[1]))
    finally:
        sock.close()
"""


def test_a_test_broken_by_an_earlier_tests_port_names_its_polluter(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_it=POLLUTER)
    points = run_timeline(pytester, "ports sockets", "--leakguard-no-cleanup")
    starts, unrelated, broken = points
    assert [p["counts"]["ports"] for p in points] == [1, 1, 1]
    assert broken["outcome"] == "failed"
    assert broken["polluters"] == ["test_it.py::test_starts_a_server"]
    assert unrelated["polluters"] == starts["polluters"] == []  # passed: nothing to explain
    assert [r["owner"] for r in broken["residue"]] == ["test_it.py::test_starts_a_server"]


def test_no_report_asked_for_means_no_timeline_is_recorded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        conftest="""
        def pytest_sessionfinish(session):
            import leakguard.plugin.stash as p
            engine = session.config.stash[p.RUN].engine
            print("OBSERVING", engine.observe is not None)
        """,
        test_it="def test_ok():\n    pass\n",
    )
    quiet = pytester.runpytest_subprocess(*QUIET, "--leakguard", "-s")
    quiet.stdout.fnmatch_lines(["*OBSERVING False*"])
    # Control: with a JSON report the same run records one.
    recorded = pytester.runpytest_subprocess(
        *QUIET, "--leakguard", "-s", "-o", "leakguard_report=out.json"
    )
    recorded.stdout.fnmatch_lines(["*OBSERVING True*"])


def test_a_test_checked_from_a_late_fixture_request_has_its_point(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_it="""
        import threading, time

        def test_unchecked():
            pass

        def test_asks_late(request):
            request.getfixturevalue("leakguard")
            threading.Thread(target=time.sleep, args=(30,), name="late", daemon=True).start()
        """
    )
    pytester.runpytest_subprocess(
        *QUIET, *SHORT_GRACE, "-o", "leakguard_trackers=threads", "-o", "leakguard_report=out.json"
    )
    (point,) = json.loads(Path(pytester.path, "out.json").read_text())["timeline"]
    assert point["test"] == "test_it.py::test_asks_late"
    assert [leak["description"] for leak in point["leaks"]] == [
        "thread 'late' (daemon) target=time:sleep"
    ]

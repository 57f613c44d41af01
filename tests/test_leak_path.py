"""The leak path: wait only where waiting can help, garbage-only leaks, one line per root cause
(issue 11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.options import QUIET
from tests.support.pairs import run_pair

# Records every sleep leakguard's grace loop takes, into sleeps.json at the end of the run.
SLEEP_WATCH = """
import json, time
import leakguard.core.grace

SLEEPS = []
_real_sleep = time.sleep

def watched(seconds):
    import sys
    if sys._getframe(1).f_code.co_filename == leakguard.core.grace.__file__:
        SLEEPS.append(seconds)
    _real_sleep(seconds)

time.sleep = watched

def pytest_unconfigure(config):
    time.sleep = _real_sleep
    with open("sleeps.json", "w") as f:
        json.dump(SLEEPS, f)
"""


def _sleeps(pytester: pytest.Pytester) -> list[float]:
    return list(json.loads(Path(pytester.path, "sleeps.json").read_text()))


def test_a_descriptor_leak_with_nothing_of_the_test_alive_is_decided_without_waiting(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(SLEEP_WATCH)
    pytester.makepyfile(
        test_it="""
        import os
        KEEP = []

        def test_leaks_a_file():
            KEEP.append(open(os.devnull))
        """
    )
    result = pytester.runpytest(
        *QUIET, "--leakguard", "-o", "leakguard_trackers=fds", "-o", "leakguard_grace=30"
    )
    result.assert_outcomes(passed=1, errors=1)
    assert _sleeps(pytester) == []

    # Control: a thread of the test is still alive and may close it: the grace is waited.
    pytester.makepyfile(
        test_it="""
        import os, threading, time
        KEEP = []

        def test_leaks_a_file_a_thread_closes_later():
            f = open(os.devnull)
            def close_later():
                time.sleep(0.5)  # alive when the check looks, however loaded the machine
                f.close()
            threading.Thread(target=close_later).start()
        """
    )
    result = pytester.runpytest(
        *QUIET, "--leakguard", "-o", "leakguard_trackers=fds", "-o", "leakguard_grace=30"
    )
    result.assert_outcomes(passed=1)
    assert _sleeps(pytester) != []


CYCLE = """
import selectors

class Server:
    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.me = self  # a reference cycle: only the collector frees it

def test_drops_a_server():
    Server()
"""


# Holds the leak path after the grace, before its garbage collection: the test's thread is let
# go there, and the path goes on once the thread has done its part (closed its file, or not).
HOLD_BEFORE_COLLECTING = """
import threading
import leakguard.core.polling as polling

LET_GO = threading.Event()
DONE = threading.Event()
_describe_again = polling.Poll.describe_again

def describe_again(self, found):
    _describe_again(self, found)
    LET_GO.set()
    DONE.wait(10)

polling.Poll.describe_again = describe_again
"""


def test_a_file_the_tests_thread_closes_after_the_grace_is_not_taken_for_garbage(
    pytester: pytest.Pytester,
) -> None:
    # The thread closes its file between the grace's last poll and the garbage collection:
    # the file ended by itself (as it would have a moment earlier), it was not freed by the
    # collector. Once seen under load only; held here at that very point.
    pair = run_pair(
        pytester,
        lambda: pytester.runpytest_subprocess(
            *QUIET, "--leakguard", "-o", "leakguard_trackers=fds", "-o", "leakguard_grace=0.2"
        ),
        conftest=HOLD_BEFORE_COLLECTING,
        test_it="""
        import threading
        from conftest import LET_GO, DONE

        class Holder:
            def __init__(self, path):
                self.file = open(path, "w")
                self.me = self  # control only

        def work(holder):
            LET_GO.wait(10)
            holder.file.close()  # case only
            DONE.set()

        def test_hands_a_file_to_a_thread(tmp_path):
            holder = Holder(tmp_path / "data.log")
            threading.Thread(target=work, args=(holder,)).start()
        """,
    )
    # Control: the thread lets go of a file that only a collection closes (a cycle): that one
    # is garbage, reported as such by the very same path.
    pair.control.assert_outcomes(passed=1)
    pair.control.stdout.fnmatch_lines(["freed only by the garbage collector*"])
    pair.case.assert_outcomes(passed=1)
    pair.case.stdout.no_fnmatch_line("*garbage collector*")
    pair.case.stdout.no_fnmatch_line("*data.log*")


def test_a_selector_dropped_in_a_reference_cycle_is_garbage_only_not_a_failure(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_it=CYCLE)
    args = (*QUIET, "--leakguard", "-o", "leakguard_trackers=fds", "-o", "leakguard_grace=0.05")
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "freed only by the garbage collector (close them explicitly): 1, by creation site:",
            "    1 test: fd epoll opened at test_it.py:5 in *__init__ (e.g. test_it.py::test_drops_a_server)",  # 3.10: no co_qualname
        ]
    )
    # Control: the same leak with leakguard_garbage_action = fail errors.
    result = pytester.runpytest(*args, "-o", "leakguard_garbage_action=fail")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_drops_a_server left to the garbage collector (close them explicitly): 1 resource"
        ]
    )


def test_several_tests_leaking_from_one_site_get_one_summary_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        helper="""
        import os
        KEEP = []
        def open_log():
            KEEP.append(open(os.devnull))
        """,
        test_it="""
        import pytest, helper

        @pytest.mark.parametrize("n", range(3))
        def test_opens(n):
            helper.open_log()
        """,
    )
    result = pytester.runpytest(
        *QUIET, "--leakguard", "-o", "leakguard_trackers=fds", "-o", "leakguard_grace=0"
    )
    result.assert_outcomes(passed=3, errors=3)
    result.stdout.fnmatch_lines(
        [
            "several owners leaked from the same site:",
            "    3 tests: fd device /dev/null (mode r) opened at helper.py:4 in open_log "
            "(e.g. test_it.py::test_opens[[]0[]], test_it.py::test_opens[[]1[]], …)",
        ]
    )


def test_an_origin_inside_a_library_names_the_users_call_into_it(pytester: pytest.Pytester) -> None:
    lib = pytester.mkdir("site-packages")
    (lib / "srvlib.py").write_text("import os\ndef open_log():\n    return open(os.devnull)\n")
    pytester.syspathinsert(lib)
    pytester.makepyfile(
        test_it="""
        import srvlib
        KEEP = []

        def test_start():
            KEEP.append(srvlib.open_log())
        """
    )
    result = pytester.runpytest(
        *QUIET, "--leakguard", "-o", "leakguard_trackers=fds", "-o", "leakguard_grace=0"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  fd * opened at site-packages/srvlib.py:3 in open_log, called from test_it.py:5 in test_start"
        ]
    )


def test_an_origin_reads_the_code_only_of_the_frames_it_names(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reading ``frame.f_code`` raises an audit event, and once any audit hook exists (the
    # descriptor trackers add one) every such read runs the hooks. The walk from the open up
    # to the user's call passes twenty library frames: only the two it names are read.
    lib = pytester.mkdir("site-packages")
    (lib / "deeplib.py").write_text(
        "import os\n"
        "def open_deep(depth):\n"
        "    if depth == 0:\n"
        "        return open(os.devnull)\n"
        "    return open_deep(depth - 1)\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(lib))  # the run is a subprocess: its own audit hook
    pytester.makepyfile(
        test_it="""
        import sys
        import deeplib
        KEEP = []
        READS = []
        COUNTING = [False]

        def count(event, args):
            if COUNTING[0] and event == "object.__getattr__" and args[1] == "f_code":
                READS.append(args[0])

        sys.addaudithook(count)

        def test_open():
            COUNTING[0] = True
            KEEP.append(deeplib.open_deep(20))
            COUNTING[0] = False
            print(f"f_code reads: {len(READS)}")
        """
    )
    result = pytester.runpytest_subprocess(
        *QUIET, "-s", "--leakguard", "-o", "leakguard_trackers=fds", "-o", "leakguard_grace=0"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*f_code reads: 2",
            "  fd * opened at site-packages/deeplib.py:4 in open_deep, "
            "called from test_it.py:15 in test_open",
        ]
    )


def test_the_walk_to_the_users_code_ends_at_the_test_runner(pytester: pytest.Pytester) -> None:
    # An installed plugin's fixture opens a file the test keeps: no user frame lies between
    # the plugin and pytest's runner, and the script above the runner (which called
    # pytest.main) is not the plugin's caller. The walk once went on through pytest's ~30
    # frames and named that script; it now stops at the runner's first frame.
    lib = pytester.mkdir("site-packages")
    (lib / "logplug.py").write_text(
        "import os\nimport pytest\n@pytest.fixture\ndef log_file():\n    return open(os.devnull)\n"
    )
    pytester.makepyfile(
        test_it="""
        KEEP = []

        def test_keeps(log_file):
            KEEP.append(log_file)
        """
    )
    args = [*QUIET, "--leakguard", "-o", "leakguard_trackers=fds", "-o", "leakguard_grace=0"]
    pytester.makepyfile(
        run=f"""
        import sys
        sys.path.insert(0, {str(lib)!r})
        import pytest
        sys.exit(pytest.main({[*args, "-p", "logplug", "test_it.py"]!r}))
        """
    )
    result = pytester.runpython(pytester.path / "run.py")
    result.stdout.fnmatch_lines(["  fd * opened at *site-packages/logplug.py:5 in log_file"])
    result.stdout.no_fnmatch_line("*called from*")


def test_an_origin_on_a_thread_the_test_started_names_that_thread(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_it="""
        import os, threading
        KEEP = []

        def work():
            KEEP.append(open(os.devnull))

        def test_start():
            t = threading.Thread(target=work, name="worker-1")
            t.start()
            t.join()
        """
    )
    result = pytester.runpytest(
        *QUIET, "--leakguard", "-o", "leakguard_trackers=fds", "-o", "leakguard_grace=0"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  fd * opened at test_it.py:5 in work, in thread 'worker-1' (started at test_it.py:9 in test_start)"
        ]
    )


def test_a_librarys_cached_thread_costs_no_grace_period(pytester: pytest.Pytester) -> None:
    cachelib = (
        "import threading\n"
        "_IDLE = []\n"
        "def work():\n"
        "    if not _IDLE:\n"
        "        t = threading.Thread(target=threading.Event().wait, args=(5,), daemon=True)\n"
        "        t.start()\n"
        "        _IDLE.append(t)\n"
    )
    pytester.makeconftest(SLEEP_WATCH)
    pytester.makepyfile(
        test_it="import cachelib\n\ndef test_uses_the_cache():\n    cachelib.work()\n"
    )
    args = (*QUIET, "--leakguard", "-o", "leakguard_trackers=threads", "-o", "leakguard_grace=1")
    # Control: the same module under the rootdir is the user's: its thread waits out the grace.
    pytester.makepyfile(cachelib=cachelib)
    control = pytester.runpytest(*args)
    control.assert_outcomes(passed=1, errors=1)
    assert sum(_sleeps(pytester)) > 0.5  # requested sleeps: under load each one overruns

    (pytester.path / "cachelib.py").unlink()
    lib = pytester.mkdir("site-packages")
    (lib / "cachelib.py").write_text(cachelib)
    pytester.syspathinsert(lib)
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    # Only the short first wait (up to 50 ms) before the owner search tells it is a cache.
    assert sum(_sleeps(pytester)) < 0.1


def test_the_holder_search_counts_toward_the_grace_period(pytester: pytest.Pytester) -> None:
    # After the short first wait, the holders of what is left are searched (a heap walk, slow
    # on a big heap); the rest of the grace is what remains of it from the test's end, so a
    # leak costs the grace, not the grace plus the search. leakguard's requested sleeps plus
    # its measured search time stay within the grace (before: the search came on top).
    pytester.makeconftest(SLEEP_WATCH)
    pytester.makepyfile(
        test_it="""
        import threading

        BIG = [[] for _ in range(400_000)]  # a heap the holder search must walk
        STOP = threading.Event()

        def test_leaks_a_thread():
            threading.Thread(target=STOP.wait, args=(5,), name="stays", daemon=True).start()
        """
    )
    out = pytester.path / "out.json"
    result = pytester.runpytest_subprocess(
        *QUIET, "--leakguard", "-o", "leakguard_trackers=threads", "-o", "leakguard_grace=0.6",
        "--leakguard-stats", "-o", f"leakguard_report={out}",
    )  # fmt: skip
    result.assert_outcomes(passed=1, errors=1)
    owners = json.loads(out.read_text())["stats"]["seconds"]["owners"]
    assert owners > 0.0  # the search ran (its cost is what must not come on top)
    assert sum(_sleeps(pytester)) + owners <= 0.6 + 1e-3  # float rounding only


@pytest.mark.parametrize(
    ("grace", "errors"),
    [pytest.param("1.0", 0, id="default-grace"), pytest.param("0.01", 1, id="control-no-grace")],
)
def test_a_thread_ending_50_ms_late_is_not_a_leak(
    pytester: pytest.Pytester, grace: str, errors: int
) -> None:
    # 50 ms is where the short first wait ends and the rest of the grace begins.
    pytester.makepyfile(
        test_it="""
        import threading, time

        def test_starts_a_late_thread():
            threading.Thread(target=time.sleep, args=(0.05,), name="late").start()
        """
    )
    result = pytester.runpytest_subprocess(
        "--leakguard", *QUIET, "-o", "leakguard_trackers=threads", "-o", f"leakguard_grace={grace}"
    )
    result.assert_outcomes(passed=1, errors=errors)


def _run_fds_only(pytester: pytest.Pytester) -> pytest.RunResult:
    """The file in a process of its own (its collector settings die with it): fds tracker."""
    return pytester.runpytest_subprocess(
        "--leakguard", *QUIET, "-o", "leakguard_trackers=fds", "-o", "leakguard_grace=0.05"
    )


# Counts the full collections of the run in ``FULL``; with the collector off, only leakguard's
# own (and the test's explicit ones) run.
COUNT_FULL_COLLECTIONS = """
import gc

gc.disable()
FULL = []
gc.callbacks.append(
    lambda phase, info: phase == "start" and info["generation"] == 2 and FULL.append(1)
)
"""


@pytest.mark.parametrize(
    ("make", "full"),
    [
        pytest.param("ctypes.CDLL(None).eventfd(0, 0)", 0, id="native"),
        pytest.param("os.eventfd(0)", 1, id="control-made-by-a-python-call"),
    ],
)
def test_a_native_descriptor_costs_no_garbage_collection(
    pytester: pytest.Pytester, make: str, full: int
) -> None:
    # No Python object holds a native descriptor: no collection can close it, so none is run
    # (a full one costs ≈ 20 ms on a big heap). A bare number a Python call made is checked.
    pytester.makeconftest(COUNT_FULL_COLLECTIONS)
    pytester.makepyfile(
        test_it=f"""
        import ctypes, os
        from conftest import FULL

        KEEP = []

        def test_makes_one():
            KEEP.append({make})

        def test_full_collections():
            assert len(FULL) == {full}
        """
    )
    result = _run_fds_only(pytester)
    assert result.parseoutcomes()["passed"] == 2


@pytest.mark.parametrize(
    ("keep", "outcomes", "full"),
    [
        pytest.param("KEEP.append(f)", {"passed": 2, "errors": 1}, 0, id="kept-by-the-test-module"),
        pytest.param(
            "cycle = [f]; cycle.append(cycle); gc.collect(1); del cycle",
            {"passed": 2},
            1,
            id="control-garbage-in-an-old-cycle",
        ),
    ],
)
def test_a_leak_a_loaded_module_keeps_costs_no_full_garbage_collection(
    pytester: pytest.Pytester, keep: str, outcomes: dict[str, int], full: int
) -> None:
    # The holder search a leak gets anyway runs before the full collection: a file a loaded
    # module keeps cannot be freed by one, so none is run (≈ 15 ms on a small heap, more on a
    # big one). Garbage in an old cycle still gets its collection, and is garbage-only.
    pytester.makeconftest(COUNT_FULL_COLLECTIONS)
    pytester.makepyfile(
        test_it=f"""
        import gc, os
        from conftest import FULL

        KEEP = []

        def test_opens_one():
            f = open(os.devnull)
            {keep}

        def test_full_collections():
            assert len(FULL) == {full}
        """
    )
    result = _run_fds_only(pytester)
    result.assert_outcomes(**outcomes)


def test_a_creation_site_that_left_garbage_is_collected_before_it_is_searched(
    pytester: pytest.Pytester,
) -> None:
    # Searching the holders of what turns out to be garbage is wasted (the collection frees it
    # anyway): a site that left garbage once is collected first from then on, while another
    # site's real leaks are still searched first (and spared the collection).
    pytester.makeconftest(
        COUNT_FULL_COLLECTIONS
        + """
import json
import leakguard.core.holders as holders

SEARCHES = []
_real = holders.find_holders

def find_holders(targets, root, **kwargs):
    SEARCHES.append(len(targets))
    return _real(targets, root, **kwargs)

holders.find_holders = find_holders

def pytest_unconfigure(config):
    with open("counts.json", "w") as f:
        json.dump({"searches": len(SEARCHES), "full": len(FULL)}, f)
"""
    )
    pytester.makepyfile(
        test_it="""
        import gc, os
        import pytest

        KEEP = []

        def kept():
            KEEP.append(open(os.devnull))

        def garbage():
            cycle = [open(os.devnull)]
            cycle.append(cycle)
            gc.collect(1)  # into the oldest generation while still reachable

        @pytest.mark.parametrize("leak", [garbage, kept] * 3)
        def test_leaks(leak):
            leak()
        """
    )
    result = _run_fds_only(pytester)
    result.assert_outcomes(passed=6, errors=3)
    counts = json.loads(Path(pytester.path, "counts.json").read_text())
    # Garbage: searched once (its site not met yet), then collected first (3 full collections).
    # Kept: searched before the collection, which is skipped, every time (3 searches).
    assert counts == {"searches": 4, "full": 3}


def _counting_gc_calls(function: str, caller: str, out: str) -> str:
    """A conftest that writes to ``out`` (JSON) how many objects each ``gc.<function>`` call
    that ``caller`` (a module name) made was given: one heap traversal per call."""
    return f"""
import gc, json, sys

CALLS = []
_real = gc.{function}

def {function}(*objects):
    if sys._getframe(1).f_globals.get("__name__") == "{caller}":
        CALLS.append(len(objects))
    return _real(*objects)

gc.{function} = {function}

def pytest_unconfigure(config):
    gc.{function} = _real
    with open("{out}", "w") as f:
        json.dump(CALLS, f)
"""


def test_the_holder_search_ends_where_the_referrers_run_out(pytester: pytest.Pytester) -> None:
    # Nothing holds a thread the test left but threading's registry (a dead end), its start
    # call and leakguard's own bookkeeping (which ends in frames; on 3.10 through instance
    # dicts, one level more): the walk ends within four levels. It used to follow its own
    # argument tuple upward to its depth bound (eight heap traversals, ≈ 0.35 s on a big
    # suite's heap) for every leak no module keeps.
    pytester.makeconftest(
        _counting_gc_calls("get_referrers", "leakguard.core.holders", "walk.json")
    )
    pytester.makepyfile(
        test_it="""
        import threading

        def test_leaves_a_thread():
            threading.Thread(target=threading.Event().wait, daemon=True, name="w").start()
        """
    )
    result = pytester.runpytest_subprocess(
        "--leakguard", *QUIET, "-o", "leakguard_trackers=threads", "-o", "leakguard_grace=0.2"
    )
    result.assert_outcomes(passed=1, errors=1)
    levels = json.loads(Path(pytester.path, "walk.json").read_text())
    assert 1 <= len(levels) <= 4, levels


@pytest.mark.parametrize(
    ("leaks", "trackers", "searches"),
    [
        pytest.param("fds.append(open(path, 'w')); fds.append(socket.socket())", "fds,sockets", 1,
                     id="a-file-and-a-socket"),
        pytest.param("fds.append(open(path, 'w'))", "fds", 1, id="control-a-file-alone"),
    ],
)  # fmt: skip
def test_one_heap_walk_finds_the_owners_of_everything_a_test_left(
    pytester: pytest.Pytester, leaks: str, trackers: str, searches: int
) -> None:
    # The owners of a test's new descriptors are found in one walk of the heap (≈ 15-50 ms on a
    # big suite's heap), whichever descriptor tracker asks first; the other tracker, and any
    # rescan (after a garbage collection, a poll that saw a change), reuse it. Each tracker
    # walked on its own, and again after every rescan, before (uvicorn's reload tests: 20
    # walks for 12 tests, now 12).
    pytester.makeconftest(
        """
        import json
        import leakguard.trackers.descriptors.owners as owners

        SEARCHES = []
        _real = owners.find_chains

        def find_chains(fds, *args):
            SEARCHES.append(sorted(fds))
            return _real(fds, *args)

        owners.find_chains = find_chains

        def pytest_unconfigure(config):
            with open("searches.json", "w") as f:
                json.dump(SEARCHES, f)
        """
    )
    pytester.makepyfile(
        test_it=f"""
        import socket

        fds = []

        def test_leaks(tmp_path):
            path = tmp_path / "f"
            {leaks}
        """
    )
    result = pytester.runpytest_subprocess(
        "--leakguard", *QUIET, "-o", f"leakguard_trackers={trackers}", "-o", "leakguard_grace=0.05"
    )
    result.assert_outcomes(passed=1, errors=1)
    assert len(json.loads(Path(pytester.path, "searches.json").read_text())) == searches


@pytest.mark.parametrize(
    ("make", "second_passes"),
    [
        pytest.param("selectors.EpollSelector()", 0, id="made-by-a-selector"),
        pytest.param("select.epoll()", 3, id="control-a-bare-epoll"),
    ],
)
def test_an_epoll_a_selector_made_is_found_without_the_second_heap_pass(
    pytester: pytest.Pytester, make: str, second_passes: int
) -> None:
    # The collector does not list epoll objects: finding one's owner takes a second pass over
    # what every plain object refers to (2/3 of the search, ≈ 40 ms on a 200,000-object heap).
    # One a selector made (every asyncio loop's) is found through that selector instead, and
    # kept for the rest of the check the same way; a bare select.epoll() takes the pass at
    # each step that asks (describing, the owner object, cleanup: no weak reference keeps
    # it). Either way the owner is found and closed.
    owners = "leakguard.trackers.descriptors.owners"
    pytester.makeconftest(_counting_gc_calls("get_referents", owners, "passes.json"))
    pytester.makepyfile(
        test_it=f"""
        import select, selectors

        KEEP = []

        def test_leaks():
            KEEP.append({make})
        """
    )
    result = pytester.runpytest_subprocess(
        "--leakguard", *QUIET, "-o", "leakguard_trackers=fds", "-o", "leakguard_grace=0.05"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fd * epoll*", "*closed (through its epoll)*"])
    assert len(json.loads(Path(pytester.path, "passes.json").read_text())) == second_passes


# An automatic collection, set off by leakguard's own allocations while it describes the socket
# (what 3.10 did in CI): the socket is freed under its description.
COLLECT_WHILE_DESCRIBING = """
import gc
import leakguard.trackers.descriptors.describe as describe

_probe = describe.probe_socket

def probe_socket(fd):
    gc.collect()
    return _probe(fd)

describe.probe_socket = probe_socket
"""


# An automatic collection set off while the end-of-test check takes its snapshots, before it
# has seen the test's garbage (it happens when the scan's allocations cross the threshold: on
# Python 3.13 in CI, 1 run in a few). Automatic collections only run while the collector is on.
COLLECT_WHILE_SCANNING = """
import gc
import leakguard.trackers.descriptors.base as base

_scan = base.scan_fds

def scan_fds(*args, **kwargs):
    if gc.isenabled():
        gc.collect()
    return _scan(*args, **kwargs)

base.scan_fds = scan_fds
"""


@pytest.mark.parametrize(
    "conftest",
    [
        pytest.param("", id="leakguards-collection"),
        pytest.param(COLLECT_WHILE_DESCRIBING, id="an-automatic-collection-while-describing"),
        pytest.param(COLLECT_WHILE_SCANNING, id="an-automatic-collection-while-checking"),
    ],
)
def test_what_the_collectors_finalizers_say_on_the_leak_path_is_not_the_next_tests_error(
    pytester: pytest.Pytester, conftest: str
) -> None:
    # An unclosed socket in a reference cycle: leakguard's collection frees it during the
    # first test's teardown; under -W error its ResourceWarning is raised in __del__. It must
    # not surface as an error of the next test, which did nothing, nor vanish: the summary
    # says what the finalizer said.
    pytester.makeconftest(conftest)
    pytester.makepyfile(
        test_it="""
        import gc
        import socket

        # No automatic collection in pytest's own code between this test and leakguard's
        # check (where one falls depends on allocation counts): pytest would report the
        # finalizer's warning itself, on the first test, and the case would test nothing.
        # The cases' own collections are explicit, or made where the collector is on.
        gc.set_threshold(1_000_000)

        class Holder:
            def __init__(self):
                self.me = self
                self.sock = socket.socket()

        def test_drops_a_socket_in_a_cycle():
            Holder()

        def test_next():
            gc.collect()  # whichever test collects first is handed the warning
        """
    )
    args = ("-W", "error::ResourceWarning", "-W", "error::pytest.PytestUnraisableExceptionWarning")
    result = pytester.runpytest_subprocess(*QUIET, "--leakguard", *args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "freed only by the garbage collector*",
            "    1 test: socket *",
            "  what their finalizers said when the collector freed them:",
            "    Exception ignored in: <socket.socket *ResourceWarning: unclosed *"
            "(during test_it.py::test_drops_a_socket_in_a_cycle)",
        ]
    )
    # Control: without leakguard the garbage is still there when the next test collects, and
    # its warning fails that test.
    control = pytester.runpytest_subprocess(*QUIET, "-p", "no:leakguard", *args)
    # (Reported in its call or its teardown, depending on when pytest looks.)
    outcomes = control.parseoutcomes()
    assert outcomes.get("passed") == 1, outcomes
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 1, outcomes
    control.stdout.fnmatch_lines(["* test_it.py::test_next - *Unraisable*"])


def test_what_a_finalizer_says_during_the_grace_wait_is_not_the_next_tests_error(
    pytester: pytest.Pytester,
) -> None:
    # The same socket in a cycle, and a thread of the test that collects garbage and ends
    # 50 ms after the test: both end during the grace wait, so the wait leaves nothing found.
    # What the finalizer said then is this test's garbage still, never the next test's error.
    pytester.makepyfile(
        test_it="""
        import gc
        import socket
        import threading
        import time

        gc.set_threshold(1_000_000)  # no automatic collection: see the test above

        class Holder:
            def __init__(self):
                self.me = self
                self.sock = socket.socket()

        def collect_later():
            time.sleep(0.05)
            gc.collect()

        def test_drops_a_socket_in_a_cycle():
            Holder()
            threading.Thread(target=collect_later).start()

        def test_next():
            pass
        """
    )
    args = ("-W", "error::ResourceWarning", "-W", "error::pytest.PytestUnraisableExceptionWarning")
    result = pytester.runpytest_subprocess(*QUIET, "--leakguard", *args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "freed only by the garbage collector*",
            "    1 test: socket *",
            "  what their finalizers said when the collector freed them:",
            "    Exception ignored in: <socket.socket *ResourceWarning: unclosed *"
            "(during test_it.py::test_drops_a_socket_in_a_cycle)",
        ]
    )


# A tracker of objects whose finalizer warns (as an unclosed socket's does): the registry holds
# the only strong reference, which the holder search takes over (owner_object pops it), so the
# object is freed when the search lets go of it. ``WEAK`` holds those left in a reference cycle.
DROPS_CONFTEST = """
import gc
import warnings
import weakref

from leakguard import Resource, Tracker

gc.set_threshold(1_000_000)  # only leakguard's collections: see the tests above

STRONG = {}
WEAK = weakref.WeakValueDictionary()


class Drop:
    def __init__(self, key):
        self.key = key

    def __del__(self):
        warnings.warn(f"unclosed drop {self.key}", ResourceWarning)


class DropTracker(Tracker):
    name = "drops"
    ends_by_itself = False

    def snapshot(self, phase):
        return dict.fromkeys([*STRONG, *WEAK])

    def describe(self, key, handle):
        return Resource(self.name, key, "drop", key, verb="made")

    def owner_object(self, resource):
        return STRONG.pop(resource.key, None) or WEAK.get(resource.key)


def pytest_leakguard_register_trackers(registry):
    registry.register(DropTracker)
"""


def test_what_a_finalizer_says_during_the_reports_holder_search_is_not_the_next_tests_error(
    pytester: pytest.Pytester,
) -> None:
    # The first test's drop, in a cycle, is freed by leakguard's full collection: its creation
    # site then collects before it searches. The second test's drop is not garbage (held by
    # the registry), so it reaches the report, whose holder search frees it on letting go.
    pytester.makeconftest(DROPS_CONFTEST)
    pytester.makepyfile(
        test_it="""
        from conftest import STRONG, WEAK, Drop

        def test_drops_one_in_a_cycle():
            drop = Drop("first")
            drop.me = drop
            WEAK["first"] = drop

        def test_keeps_one():
            STRONG["second"] = Drop("second")

        def test_next():
            pass
        """
    )
    args = ("-W", "error::ResourceWarning", "-W", "error::pytest.PytestUnraisableExceptionWarning")
    result = pytester.runpytest_subprocess(
        *QUIET, "--leakguard", "-o", "leakguard_trackers=drops", *args
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "freed only by the garbage collector*",
            "  what their finalizers said when the collector freed them:",
            "    *ResourceWarning: unclosed drop first*(during test_it.py::test_drops_one_in_a_cycle)",
            "    *ResourceWarning: unclosed drop second*(during test_it.py::test_keeps_one)",
        ]
    )


# Prints the timeout of every run of a loop the tasks tracker gives its grace period in, and the
# number of sleeps leakguard's grace loop took (a pair's two runs share one folder: no files).
DRIVE_WATCH = """
import time
import leakguard.core.grace
import leakguard.trackers.tasks.loops as loops

DRIVES = []
SLEEPS = []
_drive = loops.drive
_real_sleep = time.sleep

def drive(loop, tasks, timeout):
    DRIVES.append(timeout)
    return _drive(loop, tasks, timeout)

def watched(seconds):
    import sys
    if sys._getframe(1).f_code.co_filename == leakguard.core.grace.__file__:
        SLEEPS.append(seconds)
    _real_sleep(seconds)

loops.drive = drive
time.sleep = watched

def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"loop runs: {DRIVES}; grace sleeps: {len(SLEEPS)}")
"""


def _run_tasks_only(pytester: pytest.Pytester, grace: str = "5") -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        *QUIET, "--leakguard", "-o", "leakguard_trackers=tasks", "-o", f"leakguard_grace={grace}"
    )


def test_a_task_nothing_can_wake_gets_no_grace_period_when_its_runner_closes_the_loop(
    pytester: pytest.Pytester,
) -> None:
    # A consumer left waiting on a queue: no callback ready, no timer, no descriptor, no thread
    # of the run alive. Running the loop for the grace period cannot finish it.
    pair = run_pair(
        pytester,
        lambda: _run_tasks_only(pytester),
        conftest=DRIVE_WATCH,
        test_it="""
        import asyncio, threading, time

        def test_forgets_a_consumer():
            async def main():
                loop = asyncio.get_running_loop()
                queue = asyncio.Queue()
                async def consume():
                    await queue.get()
                loop.create_task(consume())
                wake = lambda: (time.sleep(0.05), loop.call_soon_threadsafe(queue.put_nowait, 1))
                threading.Thread(target=wake).start()  # control only
                await asyncio.sleep(0)
            asyncio.run(main())
        """,
    )
    # Control: a thread wakes the consumer 50 ms later: the loop runs for it, and it finishes.
    pair.control.assert_outcomes(passed=1)
    pair.control.stdout.fnmatch_lines(["loop runs: [[]5.0[]]; grace sleeps: 0"])
    pair.case.assert_outcomes(passed=1, errors=1)
    pair.case.stdout.fnmatch_lines(["*task*'Task-2' coro=*consume*"])
    pair.case.stdout.fnmatch_lines(["loop runs: [[][]]; grace sleeps: 0"])


def test_an_idle_worker_of_trios_thread_cache_does_not_keep_a_stalled_loop_waiting(
    pytester: pytest.Pytester,
) -> None:
    # trio's cache keeps its idle workers alive for 10 s, parked until trio hands one a job: it
    # cannot wake an asyncio task meanwhile. Found in anyio's suite, where one earlier trio test
    # made every later runner teardown with a forgotten task wait out the grace (1 s each).
    # Nor can it close a descriptor: the end-of-test check does not wait for it either.
    pytest.importorskip("trio")
    pair = run_pair(
        pytester,
        lambda: _run_tasks_only(pytester, grace="1"),
        conftest=DRIVE_WATCH,
        test_it="""
        import asyncio, trio
        from trio._core._thread_cache import ThreadCache

        def test_forgets_a_consumer():
            async def in_trio():
                return await trio.to_thread.run_sync(lambda: 7)
            assert trio.run(in_trio) == 7  # case only
            done = []  # control only
            ThreadCache().start_thread_soon(lambda: 7, done.append)  # control only
            while not done:  # control only
                pass  # control only

            async def main():
                async def consume():
                    await asyncio.Queue().get()
                asyncio.get_running_loop().create_task(consume())
                await asyncio.sleep(0)
            asyncio.run(main())
        """,
    )
    # Control: the idle worker of a cache of the test's own is not proven parked by a library
    # (the test could hand it a job): the loop runs for the grace, and the check waits the
    # grace for that live thread of the test; the task is still left.
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(["loop runs: [[]1.0[]]; grace sleeps: [1-9]*"])
    pair.case.assert_outcomes(passed=1, errors=1)
    pair.case.stdout.fnmatch_lines(["*task*coro=*consume*"])
    pair.case.stdout.fnmatch_lines(["loop runs: [[][]]; grace sleeps: 0"])


def test_a_task_on_a_loop_left_open_that_nothing_can_wake_is_decided_without_waiting(
    pytester: pytest.Pytester,
) -> None:
    pair = run_pair(
        pytester,
        lambda: _run_tasks_only(pytester),
        conftest=DRIVE_WATCH,
        test_it="""
        import asyncio, threading, time

        KEEP = []  # held: dropped, the loop is garbage an automatic collection may free first

        def test_leaves_a_loop_open():
            loop = asyncio.new_event_loop()
            KEEP.append(loop)
            event = asyncio.Event()
            async def wait():
                await event.wait()
            loop.create_task(wait())
            wake = lambda: (time.sleep(0.05), loop.call_soon_threadsafe(event.set))
            threading.Thread(target=wake).start()  # control only
        """,
    )
    # Control: a thread of the test will wake the task: the grace is spent running the loop
    # (the task then ends; the loop itself is still left open).
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.no_fnmatch_line("*task*coro=*wait*")
    pair.control.stdout.fnmatch_lines(["loop runs: *; grace sleeps: [1-9]*"])
    pair.case.assert_outcomes(passed=1, errors=1)
    pair.case.stdout.fnmatch_lines(["*task*coro=*wait*"])
    pair.case.stdout.fnmatch_lines(["loop runs: *; grace sleeps: 0"])

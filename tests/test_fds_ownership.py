"""Descriptor trackers, first do no harm: only what the test owns is blamed, and only what its
Python owner can close is closed; everything else is left open, with the reason (issue 9)."""

from __future__ import annotations

import sys
from functools import partial

import pytest

from tests.support.options import run_checked
from tests.support.pairs import run_pair

# Keyword "trackers" overrides the default per call.
run = partial(run_checked, trackers="sockets ports fds")


# --- item 1: multiprocessing.Pipe holds plain ints ---------------------------------------------
@pytest.mark.parametrize(
    ("duplex", "line"),
    [
        pytest.param(
            True,
            "cleanup: socket closed (through its Connection); socket closed (through its Connection)",
            id="duplex-socketpair",
        ),
        pytest.param(
            False,
            "cleanup: fd * closed (through its Connection); fd * closed (through its Connection)",
            id="one-way-os.pipe",
        ),
    ],
)
def test_multiprocessing_pipe_kept_by_a_test_is_closed_through_its_connections(
    pytester: pytest.Pytester, duplex: bool, line: str
) -> None:
    # Closing the numbers behind the Connections let them close the reused numbers later: the
    # innocent test's file got EBADF. Recall: the test's Pipe is still reported and cleaned.
    pytester.makepyfile(
        test_it=f"""
        import gc, multiprocessing
        keep = []

        def test_leaks_pipe():
            keep.append(multiprocessing.Pipe({duplex}))

        def test_innocent(tmp_path):
            f = open(tmp_path / "x", "w"); keep.clear(); gc.collect()
            f.write("hello"); f.close()
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*test_leaks_pipe leaked 2 resources", "*opened at test_it.py:5*", line]
    )


# --- item 2: libuv's process-wide signal pipe --------------------------------------------------
def test_uvloop_signal_pipe_is_native_and_never_closed(pytester: pytest.Pytester) -> None:
    pytest.importorskip("uvloop")
    # The first uvloop loop makes libuv's signal pipe in C: no Python call, no Python owner.
    # Closed, the next libuv spawn hit EBADF and libuv abort()ed the whole run (exit 134).
    pytester.makepyfile(
        test_it="""
        import asyncio, signal, uvloop

        def test_first_uvloop_signal_handler():
            loop = uvloop.new_event_loop()
            loop.add_signal_handler(signal.SIGUSR1, lambda: None)
            loop.remove_signal_handler(signal.SIGUSR1); loop.close()

        def test_uvloop_subprocess_afterwards():
            async def main():
                p = await asyncio.create_subprocess_exec("true"); await p.wait()
            loop = uvloop.new_event_loop()
            try: loop.run_until_complete(main())
            finally: loop.close()
        """
    )
    result = run(pytester, trackers="fds")
    assert result.ret == pytest.ExitCode.OK, result.ret  # native: named, never failed
    assert result.parseoutcomes()["passed"] == 2
    result.stdout.fnmatch_lines(
        [
            "native descriptors (made in C, no Python owner; never closed): 2",
            "    fd * pipe:* (read end) (during test_it.py::test_first_uvloop_signal_handler) [[]report[]]",
        ]
    )
    result.stdout.no_fnmatch_line("*pipe:* closed*")


# --- item 3: a running thread holding descriptors as ints --------------------------------------
WATCHER = """
import os, threading, time

class Watcher(threading.Thread):
    # Like an inotify watcher: its descriptors are plain ints that it keeps reading.
    def __init__(self):
        super().__init__(name="InotifyFD", daemon=True)
        self.r, self.w = os.pipe()
        self.ino = os.fstat(self.r).st_ino
        self.error = None
        self.halt = threading.Event()

    def run(self):
        try:
            while not self.halt.wait(0.01):
                assert os.fstat(self.r).st_ino == self.ino, "my pipe was swapped"
        except BaseException as exc:
            self.error = exc
        finally:
            os.close(self.r); os.close(self.w)

class LocalWatcher(threading.Thread):
    # The same, with descriptors made on the thread itself and held in its locals only.
    def __init__(self):
        super().__init__(name="InotifyFD", daemon=True)
        self.error = None
        self.halt = threading.Event()
        self.ready = threading.Event()

    def start(self):
        super().start()
        self.ready.wait(2)

    def run(self):
        r, w = os.pipe()
        ino = os.fstat(r).st_ino
        self.ready.set()
        try:
            while not self.halt.wait(0.01):
                assert os.fstat(r).st_ino == ino, "my pipe was swapped"
        except BaseException as exc:
            self.error = exc
        finally:
            os.close(r); os.close(w)
"""


@pytest.mark.parametrize(
    "watcher",
    [
        pytest.param("Watcher", id="made-by-the-test-held-as-attributes"),
        pytest.param("LocalWatcher", id="made-by-the-thread-held-as-locals"),
    ],
)
def test_descriptors_of_a_thread_still_running_are_left_open(
    pytester: pytest.Pytester, watcher: str
) -> None:
    # Closed under the running thread, its numbers were reused: it read a stranger's file
    # and died, and pytest charged its exception to some later test.
    pytester.makepyfile(watcher=WATCHER)
    pytester.makepyfile(
        test_it=f"""
        import os, time
        from watcher import {watcher} as Watcher
        W = []

        def test_starts_watcher():
            w = Watcher(); w.start(); W.append(w)

        def test_innocent(tmp_path):
            files = [open(tmp_path / f"f{{i}}", "w") for i in range(4)]  # reuse freed numbers
            time.sleep(0.1)
            w = W[0]
            w.halt.set(); w.join()
            for f in files: f.close()
            assert w.error is None
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_starts_watcher leaked 2 resources",
            "cleanup: fd * left open: held by thread 'InotifyFD', still running; "
            "fd * left open: held by thread 'InotifyFD', still running",
        ]
    )

    # Control: the same watcher, ended by the test: nothing runs that holds the pipe.
    pytester.makepyfile(
        test_it="""
        import os
        from watcher import Watcher

        def test_starts_and_stops_watcher():
            w = Watcher(); w.run = lambda: None  # ends at once, leaving its pipe open
            w.start(); w.join()
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*leaked 2 resources", "cleanup: fd * left open: no Python object owns it*"]
    )
    result.stdout.no_fnmatch_line("*held by thread*")


# --- item 4: multiprocessing's shared-memory heap ----------------------------------------------
def test_multiprocessing_heap_arena_is_never_closed(pytester: pytest.Pytester) -> None:
    # The first Value maps one arena for the process (an fd and the mmap's copy), kept by
    # multiprocessing.heap with a finalizer that closes the fd later: never ours to close.
    pair = run_pair(
        pytester,
        lambda: run(pytester, trackers="fds"),
        test_it="""
        import multiprocessing, multiprocessing.heap, os
        KEEP = []

        def test_first_value():
            multiprocessing.Value("B")  # case only
            KEEP.append(multiprocessing.heap.Arena(4096))  # control only

        def test_arena_still_open():
            for arena in multiprocessing.heap.BufferWrapper._heap._arenas:
                assert "pym-" in os.readlink(f"/proc/self/fd/{arena.fd}")
            v = multiprocessing.Value("B"); v.value = 3
            assert v.value == 3
        """,
    )
    # Control: the same kind of arena, made and kept by the test, is its leak (bare numbers:
    # left open all the same).
    pair.control.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_first_value leaked 2 resources",
            "  fd * file */pym-* (deleted) (mode r+)*",
        ]
    )
    pair.control.stdout.no_fnmatch_line("*kept by multiprocessing.heap*test_first_value)")
    # The heap's own arena is named as what it is, both its numbers (the file and the mmap's
    # copy, one owner object for two resources): multiprocessing's process-wide heap, which
    # never fails a test.
    pair.case.assert_outcomes(passed=2)
    pair.case.stdout.fnmatch_lines(
        [
            "process-wide caches of libraries (not failed, not cleaned): 2",
            "    fd * file */pym-* (deleted) (mode r+) kept by multiprocessing.heap* "
            "(process-wide cache; first made during test_it.py::test_first_value)",
            "    fd * file */pym-* (deleted) (mode r+) kept by multiprocessing.heap* "
            "(process-wide cache; first made during test_it.py::test_first_value)",
        ]
    )
    for result in (pair.control, pair.case):
        assert result.parseoutcomes()["passed"] == 2
        result.stdout.no_fnmatch_line("*pym-* closed*")
        result.stdout.no_fnmatch_line("*cleanup: fd * closed*")


# --- item 13: asyncio's pidfd child watcher (3.12+) ---------------------------------------------
@pytest.mark.skipif(
    sys.version_info < (3, 12), reason="asyncio watches children by pidfd from 3.12"
)
def test_pidfd_of_asyncios_child_watcher_is_never_closed(pytester: pytest.Pytester) -> None:
    # Closed with os.close ("no Python object owned it"), the run hung at exit.
    pytester.makepyfile(
        test_it="""
        import asyncio
        KEEP = []

        def test_leaves_child():
            async def main():
                KEEP.append(await asyncio.create_subprocess_exec("sleep", "30"))
            asyncio.run(main())

        def test_after():
            pass
        """
    )
    result = run(pytester, "-p", "no:asyncio", trackers="processes fds")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*fd * pidfd (process *)*", "cleanup: *process * terminated*"])
    result.stdout.no_fnmatch_line("*pidfd* closed*")

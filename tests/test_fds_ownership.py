"""Descriptor trackers, first do no harm: only what the test owns is blamed, and only what its
Python owner can close is closed; everything else is left open, with the reason (issue 9)."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import QUIET, SHORT_GRACE


def run(pytester: pytest.Pytester, *args: str, trackers: str = "sockets ports fds") -> pytest.RunResult:
    # A subprocess: an in-process inner run would share (and snapshot) this process's fds.
    # A timeout: some of these runs hung or aborted before the fix.
    return pytester.runpytest_subprocess(
        "--leakguard", *QUIET, *SHORT_GRACE, "-o", f"leakguard_trackers={trackers}", *args,
        timeout=60,
    )


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
    result.stdout.fnmatch_lines(["*test_leaks_pipe leaked 2 resources", "*opened at test_it.py:5*", line])


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
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.ret
    assert result.parseoutcomes()["passed"] == 2
    result.stdout.fnmatch_lines(["*fd * pipe:*made in C*"])
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


def test_descriptors_of_a_thread_that_ended_are_reported_as_bare_numbers(
    pytester: pytest.Pytester,
) -> None:
    # The control: the same watcher, stopped by the test: nothing runs that holds the pipe.
    pytester.makepyfile(watcher=WATCHER)
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
    result.stdout.fnmatch_lines(["*leaked 2 resources", "cleanup: fd * left open: no Python object owns it*"])
    result.stdout.no_fnmatch_line("*held by thread*")


# --- item 4: multiprocessing's shared-memory heap ----------------------------------------------
def test_multiprocessing_heap_arena_is_never_closed(pytester: pytest.Pytester) -> None:
    # The first Value maps one arena for the process (an fd and the mmap's copy), kept by
    # multiprocessing.heap with a finalizer that closes the fd later: never ours to close.
    pytester.makepyfile(
        test_it="""
        import multiprocessing, multiprocessing.heap, os

        def test_first_value():
            multiprocessing.Value("B")

        def test_arena_still_open():
            for arena in multiprocessing.heap.BufferWrapper._heap._arenas:
                assert "pym-" in os.readlink(f"/proc/self/fd/{arena.fd}")
            v = multiprocessing.Value("B"); v.value = 3
            assert v.value == 3
        """
    )
    result = run(pytester, trackers="fds")
    assert result.parseoutcomes()["passed"] == 2
    result.stdout.no_fnmatch_line("*pym-* closed*")
    result.stdout.no_fnmatch_line("*cleanup: fd * closed*")


# --- item 5: a class-level server accepting while the test talks to it -------------------------
SERVER = """
import socket, threading, time

def serve(srv, hold):
    # Keeps each connection ~hold s after the client closed, then shuts it down: a socket
    # closed behind its back makes shutdown() raise, and the server dies with it.
    with srv:
        held = []
        srv.settimeout(0.02)
        while True:
            try:
                conn, _ = srv.accept()
                conn.recv(100)
                conn.sendall(b"ok")
                held.append((time.monotonic() + hold, conn))
            except socket.timeout:
                pass
            except OSError:
                return  # the listening socket was closed: stop
            for due, conn in [h for h in held if h[0] <= time.monotonic()]:
                held.remove((due, conn))
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()

def start(hold=0.3):
    srv = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=serve, args=(srv, hold), name="server", daemon=True)
    thread.start()
    return srv, thread

def talk(address):
    with socket.create_connection(address, timeout=2) as c:
        c.sendall(b"hi")
        assert c.recv(2) == b"ok"
"""


def test_sockets_accepted_by_a_class_level_server_are_not_the_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(server=SERVER)
    pytester.makepyfile(
        test_it="""
        import time
        import server

        class TestAgainstServer:
            @classmethod
            def setup_class(cls):
                cls.srv, cls.thread = server.start()
                cls.address = cls.srv.getsockname()

            @classmethod
            def teardown_class(cls):
                cls.srv.close()
                cls.thread.join(2)

            def test_talk(self):
                server.talk(self.address)

            def test_talk_again(self):
                time.sleep(0.5)  # the server has shut the first connection down by now
                server.talk(self.address)
                assert self.thread.is_alive()
        """
    )
    run(pytester).assert_outcomes(passed=2)


def test_sockets_accepted_by_a_server_the_test_started_are_reported(pytester: pytest.Pytester) -> None:
    # The control: the test itself starts the same server (and leaves it running).
    pytester.makepyfile(server=SERVER)
    pytester.makepyfile(
        test_it="""
        import server
        KEEP = []

        def test_starts_and_talks():
            srv, thread = server.start(hold=5)
            KEEP.append(srv)
            server.talk(srv.getsockname())
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_starts_and_talks leaked 2 resources",
            "  socket tcp 127.0.0.1:* -> 127.0.0.1:* CLOSE_WAIT*",
            "  port   tcp 127.0.0.1:* LISTEN*",
        ]
    )


# --- item 9: dup2 onto a session fixture's file -------------------------------------------------
DUP2_TESTS = """
import os, pytest

@pytest.fixture(scope="session")
def log(tmp_path_factory):
    f = open(tmp_path_factory.mktemp("logs") / "run.log", "w")
    yield f
    f.close()

@pytest.fixture
def own_log(tmp_path):
    return open(tmp_path / "own.log", "w")  # made during the test, never closed

def test_redirects_onto_the_log({log}, tmp_path):
    other = open(tmp_path / "other.txt", "w")
    os.dup2(other.fileno(), {log}.fileno())
    other.close()

def test_log_still_usable(log):
    log.write("still open")
    log.flush()
"""


def test_dup2_onto_a_session_fixtures_file_never_closes_the_fixtures_object(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_it=DUP2_TESTS.format(log="log"))
    result = run(pytester, trackers="fds")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  fd * file */other.txt (mode w)   opened at test_it.py:* in test_redirects_onto_the_log",
            "cleanup: fd * left open: fd * was open before the test (dup2 onto it); "
            "its holder is older than the test",
        ]
    )


def test_dup2_onto_the_tests_own_file_is_cleaned_through_that_file(pytester: pytest.Pytester) -> None:
    # The control: the same dup2 onto a file object made during the test: closed through it.
    pytester.makepyfile(test_it=DUP2_TESTS.format(log="own_log"))
    result = run(pytester, trackers="fds")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["cleanup: fd * closed (through its TextIOWrapper)"])


# --- a session fixture's thread opening descriptors during a test ------------------------------
LOGGER = """
import os, threading, pytest

KEPT = []

def open_some(path, n):
    for i in range(n):
        KEPT.append(open(os.path.join(path, f"{threading.get_ident()}-{i}.log"), "w"))
"""


def test_descriptors_a_session_fixtures_thread_opens_during_a_test_are_not_blamed(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(logger=LOGGER)
    pytester.makepyfile(
        test_it="""
        import threading, pytest
        import logger

        @pytest.fixture(scope="session")
        def background(tmp_path_factory):
            go, done, stop = threading.Event(), threading.Event(), threading.Event()
            path = tmp_path_factory.mktemp("bg")

            def work():
                while not stop.is_set():
                    if go.wait(0.01):
                        go.clear(); logger.open_some(path, 2); done.set()

            t = threading.Thread(target=work, daemon=True); t.start()
            yield go, done
            stop.set(); t.join()

        def test_while_it_works(background):
            go, done = background
            go.set(); assert done.wait(2)
        """
    )
    run(pytester, trackers="fds").assert_outcomes(passed=1)


def test_descriptors_the_tests_own_thread_opens_are_blamed(pytester: pytest.Pytester) -> None:
    # The control: the same opening on a thread the test starts.
    pytester.makepyfile(logger=LOGGER)
    pytester.makepyfile(
        test_it="""
        import threading
        import logger

        def test_own_thread(tmp_path):
            t = threading.Thread(target=logger.open_some, args=(str(tmp_path), 2)); t.start(); t.join()
        """
    )
    result = run(pytester, trackers="fds")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*leaked 2 resources", "cleanup: fd * closed (through its TextIOWrapper)*"])


# --- item 13: asyncio's pidfd child watcher (3.12+) ---------------------------------------------
@pytest.mark.skipif(sys.version_info < (3, 12), reason="asyncio watches children by pidfd from 3.12")
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

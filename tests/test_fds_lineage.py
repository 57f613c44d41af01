"""Descriptors made during a test by code older than the test (a class-level server's thread, a
session fixture's thread) or on a number an older object holds are not the test's (issue 9)."""

from __future__ import annotations

from functools import partial

import pytest

from tests.support.options import run_checked

# Keyword "trackers" overrides the default per call.
run = partial(run_checked, trackers="sockets ports fds")


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


def test_sockets_accepted_by_a_class_level_server_are_not_the_tests(
    pytester: pytest.Pytester,
) -> None:
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
    result = run(pytester)
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*leaked*")

    # Control: the test itself starts the same server (and leaves it running).
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
    # Control: the same dup2 onto a file object made during the test: closed through it.
    pytester.makepyfile(test_it=DUP2_TESTS.format(log="own_log"))
    control = run(pytester, trackers="fds")
    control.assert_outcomes(passed=2, errors=1)
    control.stdout.fnmatch_lines(
        [
            "  fd * file */other.txt (mode w)   opened at test_it.py:* in test_redirects_onto_the_log",
            "cleanup: fd * closed (through its TextIOWrapper)",
        ]
    )

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
    result = run(pytester, trackers="fds")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*leaked*")

    # Control: the same opening on a thread the test starts is the test's.
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
    result.stdout.fnmatch_lines(
        # Kept by the app's module list: the test's leak, left to the module that keeps it.
        [
            "*leaked 2 resources",
            "cleanup: left as is: kept by logger (the application's module state*",
        ]
    )

"""Descriptors leakguard must leave open: native ones (made in C, no Python owner), ones several
Python objects claim, and a library's process-wide pool (issue 9)."""

from __future__ import annotations

from functools import partial

import pytest

from tests.support.options import run_checked
from tests.support.pairs import run_pair

# Keyword "trackers" overrides the default per call.
run = partial(run_checked, trackers="sockets ports fds")


def test_descriptor_made_in_c_with_no_python_owner_is_native(pytester: pytest.Pytester) -> None:
    pair = run_pair(
        pytester,
        lambda: run(pytester, trackers="fds"),
        test_it="""
        import ctypes, os
        KEEP = []

        def test_makes_one():
            KEEP.append(ctypes.CDLL(None).eventfd(0, 0))  # case only
            KEEP.append(os.eventfd(0))  # control only

        def test_it_is_still_open():
            os.fstat(KEEP[0])
        """,
    )
    note = "native descriptors (made in C, no Python owner; never closed): 1"
    # Control: the same eventfd made by a Python call is the test's leak (a bare number: left
    # open all the same).
    pair.control.assert_outcomes(passed=2, errors=1)
    pair.control.stdout.no_fnmatch_line(note)
    pair.control.stdout.fnmatch_lines(
        ["cleanup: fd * left open: no Python object owns it (a bare number*"]
    )
    # Made in C: named in the summary, never failed (leakguard_native_action defaults to
    # report), never closed: the holder still has it.
    pair.case.assert_outcomes(passed=2)
    pair.case.stdout.fnmatch_lines(
        [note, "    fd * eventfd (during test_it.py::test_makes_one) [[]report[]]"]
    )
    assert pair.case.ret == pytest.ExitCode.OK


def test_a_descriptor_made_in_c_above_others_closed_again_is_still_seen(
    pytester: pytest.Pytester,
) -> None:
    # Nothing Python-level is opened, so the check trusts a quick probe of the lowest free
    # numbers: C code that made six descriptors and closed the first five kept one on the
    # sixth free number, which the probe must still watch.
    pytester.makepyfile(
        test_it="""
        import ctypes
        KEEP = []

        def test_makes_six_keeps_one():
            libc = ctypes.CDLL(None)
            made = [libc.eventfd(0, 0) for _ in range(6)]
            for fd in made[:5]:
                libc.close(fd)
            KEEP.append(made[5])

        def test_it_is_still_open():
            import os
            os.fstat(KEEP[0])
        """
    )
    result = run(pytester, trackers="fds")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "native descriptors (made in C, no Python owner; never closed): 1",
            "    fd * eventfd (during test_it.py::test_makes_six_keeps_one) [[]report[]]",
        ]
    )


def test_descriptor_claimed_by_two_python_objects_is_left_open(pytester: pytest.Pytester) -> None:
    # Closing one socket object lets the other close the (reused) number later.
    pytester.makepyfile(
        test_it="""
        import os, socket
        KEEP = []

        def test_two_objects_one_number():
            a, b = socket.socketpair()
            KEEP.extend([a, b, socket.socket(fileno=a.fileno())])

        def test_both_still_hold_it():
            a, b, alias = KEEP
            assert a.fileno() == alias.fileno() != -1
            os.fstat(a.fileno())
            assert b.fileno() == -1  # the other end had one owner: closed through it
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "cleanup: *socket left open: held by 2 Python objects (socket; socket); "
            "closing one would break the other*"
        ]
    )


POOL = '''
"""A stand-in for an HTTP library: a module-level pool of keep-alive connections."""
import socket

_POOL = {}

def get(address):
    conn = _POOL.get(address)
    if conn is None:
        conn = _POOL[address] = socket.create_connection(address)
    conn.sendall(b"ping")
    return conn.recv(4)
'''


def test_keep_alive_socket_of_a_librarys_module_level_pool_is_a_cache(
    pytester: pytest.Pytester,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytester.makepyfile(
        test_it="""
        import socket, threading, pytest
        import fakehttp

        @pytest.fixture(scope="session")
        def server():
            srv = socket.create_server(("127.0.0.1", 0))
            def serve():
                conn, _ = srv.accept()
                while data := conn.recv(4):
                    conn.sendall(b"pong")
            threading.Thread(target=serve, daemon=True).start()
            yield srv.getsockname()
            srv.close()

        def test_first_request(server):
            assert fakehttp.get(server) == b"pong"

        def test_next_request(server):
            assert fakehttp.get(server) == b"pong"
        """
    )
    # Control: the same pool in the user's own application code (under the rootdir) is the
    # first test's leak; cleanup leaves it to the module that keeps it (closing it would break
    # the next test, which passes).
    pytester.makepyfile(fakehttp=POOL)
    control = run(pytester)
    control.assert_outcomes(passed=2, errors=1)
    control.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_first_request leaked 1 resource",
            "  socket tcp 127.0.0.1:* -> 127.0.0.1:* ESTABLISHED   opened at fakehttp.py:*",
            "cleanup: left as is: kept by fakehttp (the application's module state; "
            "closing it would break its next user)",
        ]
    )
    control.stdout.no_fnmatch_line("*process-wide cache*")

    # The case: the same module in a site-packages folder is a library's process-wide cache.
    (pytester.path / "fakehttp.py").unlink()
    site = tmp_path_factory.mktemp("lib") / "site-packages"
    (site / "fakehttp").mkdir(parents=True)
    (site / "fakehttp" / "__init__.py").write_text(POOL)
    monkeypatch.setenv("PYTHONPATH", str(site))
    result = run(pytester)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "process-wide caches of libraries (not failed, not cleaned): 1",
            "    socket tcp 127.0.0.1:* -> 127.0.0.1:* ESTABLISHED kept by fakehttp "
            "(process-wide cache; first made during test_it.py::test_first_request)",
        ]
    )


def test_a_detached_socket_is_the_tests_leak_at_the_line_that_detached_it(
    pytester: pytest.Pytester,
) -> None:
    # A socket made in Python and detach()ed: nothing owns the number any more, but the test
    # made it. It used to be reported as native ("made in C"), after a heap walk to prove it.
    pytester.makepyfile(
        test_it="""
        import os, socket
        KEEP = []

        def test_detaches():
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            KEEP.append(sock.detach())

        def test_it_is_still_open():
            os.fstat(KEEP[0])
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  socket udp unbound   detached at test_it.py:6 in test_detaches",
            "cleanup: socket left open: no Python object owns it (a bare number*",
        ]
    )
    result.stdout.no_fnmatch_line("*native*")


@pytest.mark.parametrize(
    ("make", "owner"),
    [
        # A file object made over the bare number owns it: the records must not prove it
        # unowned (open(fd) is noted), and cleanup closes it through that object.
        ("open(socket.socket(socket.AF_INET, socket.SOCK_DGRAM).detach(), 'rb', 0)", "FileIO"),
        # multiprocessing.Pipe() detaches a socketpair into two Connections, which hold ints.
        ("__import__('multiprocessing').Pipe()", "Connection"),
    ],
)
def test_an_object_holding_a_detached_socket_still_owns_it(
    pytester: pytest.Pytester, make: str, owner: str
) -> None:
    pytester.makepyfile(
        test_it=f"""
        import socket
        KEEP = []

        def test_leaks():
            KEEP.append({make})
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([f"cleanup: socket closed (through its {owner})*"])
    result.stdout.no_fnmatch_line("*bare number*")


def test_a_detached_socket_costs_no_garbage_collection(pytester: pytest.Pytester) -> None:
    # Nothing Python holds its number, so a collection cannot free it: the leak path runs none.
    # The inner run counts the collections from the end of each test's call to the end of its
    # teardown, leakguard's check included (automatic collections off).
    pair = run_pair(
        pytester,
        lambda: run(pytester, "-s"),
        conftest="""
        import gc, pytest
        gc.disable()
        STARTS = []
        BEFORE = []
        gc.callbacks.append(lambda phase, info: phase == "start" and STARTS.append(1))

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_call(item):
            try:
                return (yield)
            finally:
                BEFORE.append(len(STARTS))

        def pytest_runtest_logreport(report):
            if report.when == "teardown":
                print(f"\\ncollections during teardown: {len(STARTS) - BEFORE.pop()}")
        """,
        test_it="""
        import socket
        import multiprocessing.connection  # control only
        KEEP = []

        def test_detaches():
            KEEP.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM).detach())
        """,
    )
    # Control: with multiprocessing's Connection in use (it holds bare ints), the records
    # prove nothing and the leak path collects to see whether the number goes away.
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(["collections during teardown: [12]"])
    pair.case.assert_outcomes(passed=1, errors=1)
    pair.case.stdout.fnmatch_lines(["collections during teardown: 0"])

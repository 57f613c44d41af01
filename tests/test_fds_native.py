"""Descriptors leakguard must leave open: native ones (made in C, no Python owner), ones several
Python objects claim, and a library's process-wide pool (issue 9)."""

from __future__ import annotations

import pytest

from tests.conftest import QUIET, SHORT_GRACE


def run(
    pytester: pytest.Pytester, *args: str, trackers: str = "sockets ports fds"
) -> pytest.RunResult:
    # A subprocess: an in-process inner run would share (and snapshot) this process's fds.
    return pytester.runpytest_subprocess(
        "--leakguard", *QUIET, *SHORT_GRACE, "-o", f"leakguard_trackers={trackers}", *args
    )


@pytest.mark.parametrize(
    ("make", "native"),
    [
        pytest.param("ctypes.CDLL(None).eventfd(0, 0)", True, id="made-in-c"),
        pytest.param("os.eventfd(0)", False, id="control-made-by-a-python-call"),
    ],
)
def test_descriptor_made_in_c_with_no_python_owner_is_native(
    pytester: pytest.Pytester, make: str, native: bool
) -> None:
    pytester.makepyfile(
        test_it=f"""
        import ctypes, os
        KEEP = []

        def test_makes_one():
            KEEP.append({make})

        def test_it_is_still_open():
            os.fstat(KEEP[0])
        """
    )
    result = run(pytester, trackers="fds")
    assert result.parseoutcomes()["passed"] == 2  # never closed: the holder still has it
    note = "native descriptors (made in C, no Python owner; never closed): 1"
    if native:
        # Named in the summary, never failed (leakguard_native_action defaults to report).
        result.stdout.fnmatch_lines(
            [note, "    fd * eventfd (during test_it.py::test_makes_one) [[]report[]]"]
        )
        assert result.ret == pytest.ExitCode.OK
    else:
        result.stdout.no_fnmatch_line(note)
        result.stdout.fnmatch_lines(
            ["cleanup: fd * left open: no Python object owns it (a bare number*"]
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
    site = tmp_path_factory.mktemp("lib") / "site-packages"
    (site / "fakehttp").mkdir(parents=True)
    (site / "fakehttp" / "__init__.py").write_text(POOL)
    monkeypatch.setenv("PYTHONPATH", str(site))
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
    result = run(pytester)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "process-wide caches of libraries (not failed, not cleaned): 1",
            "    socket tcp 127.0.0.1:* -> 127.0.0.1:* ESTABLISHED kept by fakehttp "
            "(process-wide cache; first made during test_it.py::test_first_request)",
        ]
    )


def test_pool_control_the_tests_own_module_pool_is_its_leak(pytester: pytest.Pytester) -> None:
    # The recall side: the same pool in the user's own code (under the rootdir) is the test's.
    pytester.makepyfile(fakehttp=POOL)
    pytester.makepyfile(
        test_it="""
        import socket, threading
        import fakehttp

        SRV = socket.create_server(("127.0.0.1", 0))

        def serve():
            conn, _ = SRV.accept()
            while data := conn.recv(4):
                conn.sendall(b"pong")

        threading.Thread(target=serve, daemon=True).start()

        def test_first_request():
            assert fakehttp.get(SRV.getsockname()) == b"pong"
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  socket tcp 127.0.0.1:* -> 127.0.0.1:* ESTABLISHED   opened at fakehttp.py:*",
            "cleanup: socket closed (through its socket)",
        ]
    )

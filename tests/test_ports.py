"""The ports tracker: listening and bound sockets, in the test process and in its children."""

from __future__ import annotations

from functools import partial

import pytest

from tests.support.options import run_checked
from tests.support.outcomes import assert_leaked
from tests.support.pairs import run_pair

# Keyword "trackers" overrides the default per call.
run = partial(run_checked, trackers="ports")


# A child that listens on 127.0.0.1 and lives until its stdin closes: when the inner pytest
# process ends, so does the child, whatever the assertions do.
SERVER_CHILD = '''
import subprocess, sys

CHILD = """
import socket, sys
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)
sys.stdin.read()
"""

def start_server_child():
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    port = int(proc.stdout.readline())
    return proc, port

def stop(proc):
    proc.stdin.close()
    proc.stdout.close()
    proc.wait(10)
'''


def test_listening_tcp_socket_is_reported_as_a_port(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import socket

        def test_start_server():
            global server
            server = socket.create_server(("127.0.0.1", 0))
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_start_server leaked 1 resource",
            "  port tcp 127.0.0.1:* LISTEN   opened at test_it.py:5 in test_start_server",
            "cleanup: port closed (through its socket)",
        ]
    )


def test_bound_udp_socket_is_reported_as_a_port(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import socket

        def test_bind():
            global udp
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["  port udp 127.0.0.1:*   opened at test_it.py:5 in test_bind"])


def test_listening_unix_socket_is_reported_as_a_port(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import socket

        def test_listen():
            global server
            server = socket.socket(socket.AF_UNIX)
            server.bind("\\0leakguard-app.sock")  # abstract: no file left behind
            server.listen()
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["  port unix @leakguard-app.sock LISTEN   opened at test_it.py:5 in test_listen"]
    )


def test_closed_listener_is_not_a_leak(pytester: pytest.Pytester) -> None:
    pair = run_pair(
        pytester,
        partial(run, pytester),
        test_it="""
        import socket

        def test_tidy():
            global server
            server = socket.create_server(("127.0.0.1", 0))
            server.close()  # case only
        """,
    )
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(
        ["  port tcp 127.0.0.1:* LISTEN   opened at test_it.py:5 in test_tidy"]
    )
    pair.case.assert_outcomes(passed=1)


def test_child_process_holding_a_port_is_reported_with_its_pid(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(server_child=SERVER_CHILD)
    pytester.makepyfile(
        test_it="""
        from server_child import start_server_child

        def test_start_server():
            global proc
            proc, port = start_server_child()
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_start_server leaked 1 resource",
            "  port tcp 127.0.0.1:* LISTEN (pid *)",
            "      held by process * '* -c *' (reported by the processes tracker, whose cleanup frees the port)",
            "cleanup: port held by process *: freed when the processes tracker stops it",
        ]
    )


def test_child_holding_a_port_is_reported_as_a_process_and_a_port(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(server_child=SERVER_CHILD)
    pytester.makepyfile(
        test_it="""
        from server_child import start_server_child

        def test_start_server():
            global proc
            proc, port = start_server_child()
        """
    )
    result = run(pytester, trackers="processes ports")
    result.assert_outcomes(passed=1, errors=1)
    text = result.stdout.str()
    pid = text.split("LISTEN (pid ")[1].split(")")[0]
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_start_server leaked 2 resources",
            f"  process {pid} *",
            f"  port * tcp 127.0.0.1:* LISTEN (pid {pid})*",
            f"      held by process {pid} *",
            f"cleanup: *process {pid}*; port held by process {pid}: freed when the processes tracker stops it",
        ]
    )


def test_port_of_a_child_started_from_a_thread_is_found_through_the_processes_look(
    pytester: pytest.Pytester,
) -> None:
    # With the processes tracker on, ports asks it (not the kernel) whether any child exists:
    # a child started from another thread than the main one must still count.
    pytester.makepyfile(server_child=SERVER_CHILD)
    pytester.makepyfile(
        test_it="""
        import threading
        from server_child import start_server_child

        def test_start_server():
            global proc
            started = []
            worker = threading.Thread(target=lambda: started.append(start_server_child()))
            worker.start()
            worker.join()
            proc, port = started[0]
        """
    )
    result = run(pytester, trackers="threads processes ports")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_start_server leaked 2 resources",
            "  process * *",
            "  port * tcp 127.0.0.1:* LISTEN (pid *)*",
        ]
    )


def test_port_of_a_child_started_by_a_session_fixture_is_not_blamed(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(server_child=SERVER_CHILD)
    pytester.makeconftest(
        """
        import pytest
        from server_child import start_server_child, stop

        @pytest.fixture(scope="session")
        def server():
            proc, port = start_server_child()
            yield port
            stop(proc)
        """
    )
    # The control's first test starts the same child itself: its port is the test's.
    pair = run_pair(
        pytester,
        lambda: run(pytester, trackers="ports sockets"),
        test_it="""
        import socket
        from server_child import start_server_child

        def test_one(server):  # case only
        def test_one():  # control only
            global proc  # control only
            proc, server = start_server_child()  # control only
            socket.create_connection(("127.0.0.1", server)).close()

        def test_two(server):
            socket.create_connection(("127.0.0.1", server)).close()
        """,
    )
    assert_leaked(
        pair.control,
        "test_it.py::test_one",
        ["  port tcp 127.0.0.1:* LISTEN (pid *)"],
        passed=2,
        errors=1,
    )
    pair.case.assert_outcomes(passed=2)


def test_listener_made_by_a_module_fixture_is_not_blamed_on_the_test(
    pytester: pytest.Pytester,
) -> None:
    pair = run_pair(
        pytester,
        partial(run, pytester),
        test_it="""
        import socket, pytest

        @pytest.fixture(scope="module")
        def server():
            s = socket.create_server(("127.0.0.1", 0))
            yield s
            s.close()

        def test_one(server):  # case only
        def test_one():  # control only
            global server  # control only
            server = socket.create_server(("127.0.0.1", 0))  # control only
            assert server.fileno() >= 0

        def test_two(server):
            assert server.fileno() >= 0
        """,
    )
    assert_leaked(
        pair.control,
        "test_it.py::test_one",
        ["  port tcp 127.0.0.1:* LISTEN   opened at *"],
        passed=2,
        errors=1,
    )
    pair.case.assert_outcomes(passed=2)


def test_ignore_pattern_matches_the_port_description(pytester: pytest.Pytester) -> None:
    pair = run_pair(
        pytester,
        partial(run, pytester),
        case_args=("-o", r"leakguard_ignore=ports: ^port tcp 127\.0\.0\.1:\d+ LISTEN$"),
        test_it="""
        import socket

        def test_start_server():
            global server, udp
            server = socket.create_server(("127.0.0.1", 0))
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a near miss
            udp.bind(("127.0.0.1", 0))
        """,
    )
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_start_server leaked 2 resources",
            "  port tcp 127.0.0.1:* LISTEN *",
        ]
    )
    assert_leaked(pair.case, "test_it.py::test_start_server", ["  port udp 127.0.0.1:* *"])
    pair.case.stdout.no_fnmatch_line("*LISTEN*")


def test_listener_passed_to_the_handle_ignore_is_not_reported(pytester: pytest.Pytester) -> None:
    pair = run_pair(
        pytester,
        lambda: run(pytester, trackers="sockets ports fds"),
        test_it="""
        import socket

        def test_start_server(leakguard):
            global server, other, server_twin, other_twin
            server = socket.create_server(("127.0.0.1", 0))
            leakguard.ignore(server)  # case only
            other = open(__file__)
            leakguard.ignore(other)  # case only
            server_twin = socket.create_server(("127.0.0.1", 0))
            other_twin = open(__file__)
        """,
    )
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(
        ["leakguard: test_it.py::test_start_server leaked 4 resources"]
    )
    # Only the objects passed go: their twins, made the same way, are still reported.
    pair.case.assert_outcomes(passed=1, errors=1)
    pair.case.stdout.fnmatch_lines(["leakguard: test_it.py::test_start_server leaked 2 resources"])
    pair.case.stdout.fnmatch_lines(["  port tcp 127.0.0.1:* LISTEN*opened at test_it.py:9 in *"])
    pair.case.stdout.fnmatch_lines(
        ["  fd * file */test_it.py (mode r)*opened at test_it.py:10 in *"]
    )

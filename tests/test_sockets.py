"""The sockets tracker: open sockets that are not listening, described by address and state."""

from __future__ import annotations

import socket
from functools import partial

import pytest

from tests.support.options import run_checked
from tests.support.outcomes import assert_leaked
from tests.support.pairs import run_pair

# Keyword "trackers" overrides the default per call.
run = partial(run_checked, trackers="sockets")


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")


def test_connected_tcp_socket_is_reported_with_both_addresses_and_state(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_it="""
        import socket

        def test_leaky():
            global client
            with socket.create_server(("127.0.0.1", 0)) as server:
                client = socket.create_connection(server.getsockname())
                server.accept()[0].close()
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_leaky leaked 1 resource",
            "  socket tcp 127.0.0.1:* -> 127.0.0.1:* CLOSE_WAIT   opened at test_it.py:6 in test_leaky",
            "cleanup: socket closed (through its socket)",
        ]
    )


@needs_ipv6
def test_ipv6_tcp_socket_is_reported_with_bracketed_addresses(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import socket

        def test_leaky():
            global client, peer
            with socket.create_server(("::1", 0), family=socket.AF_INET6) as server:
                client = socket.create_connection(server.getsockname()[:2])
                peer = server.accept()[0]
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["leakguard: test_it.py::test_leaky leaked 2 resources"])
    # The two ends of one connection, each where it was opened (listed by description).
    for line in (6, 7):
        result.stdout.fnmatch_lines(
            [
                f"  socket tcp6 [[]::1[]]:* -> [[]::1[]]:* ESTABLISHED   opened at test_it.py:{line} in test_leaky"
            ]
        )


def test_unbound_tcp_and_connected_udp_sockets_are_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import socket

        def test_leaky():
            global tcp, udp
            tcp = socket.socket()
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.connect(("127.0.0.1", 9))
        """
    )
    result = run(pytester)
    assert_leaked(
        result,
        "test_it.py::test_leaky",
        [
            "  socket tcp unbound CLOSE * opened at test_it.py:5 in test_leaky",
            "  socket udp 127.0.0.1:* -> 127.0.0.1:9 * opened at test_it.py:6 in test_leaky",
        ],
    )


def test_unix_socket_pair_is_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import socket

        def test_leaky():
            global pair
            pair = socket.socketpair()
        """
    )
    result = run(pytester)
    assert_leaked(
        result,
        "test_it.py::test_leaky",
        [
            "  socket unix (unnamed)   opened at test_it.py:5 in test_leaky",
            "  socket unix (unnamed)   opened at test_it.py:5 in test_leaky",
        ],
    )


def test_socket_of_a_less_common_family_is_described_by_its_family(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_it="""
        import socket

        def test_leaky():
            global nl
            nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["  socket netlink *   opened at test_it.py:5 in test_leaky"])


def test_socket_closed_by_the_test_is_not_a_leak(pytester: pytest.Pytester) -> None:
    pair = run_pair(
        pytester,
        partial(run, pytester, trackers="sockets ports"),
        test_it="""
        import socket

        def test_tidy():
            global server, client
            server = socket.create_server(("127.0.0.1", 0))
            client = socket.create_connection(server.getsockname())
            client.close()  # case only
            server.close()  # case only
        """,
    )
    assert_leaked(
        pair.control,
        "test_it.py::test_tidy",
        [
            "  socket tcp 127.0.0.1:* -> 127.0.0.1:* ESTABLISHED*",
            "  port * tcp 127.0.0.1:* LISTEN*",
        ],
    )
    pair.case.assert_outcomes(passed=1)


def test_listening_socket_is_left_to_the_ports_tracker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import socket

        def test_listens():
            global server
            server = socket.create_server(("127.0.0.1", 0))
        """
    )
    run(pytester).assert_outcomes(passed=1)
    # Control: with the ports tracker on, the same file leaks it, as a port.
    control = run(pytester, trackers="sockets ports")
    assert_leaked(control, "test_it.py::test_listens", ["  port tcp 127.0.0.1:* LISTEN*"])


def test_asyncio_loop_left_open_is_not_reported_as_sockets_or_fds(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_it="""
        import asyncio

        def test_forgets_to_close_its_loop():
            global loop
            loop = asyncio.new_event_loop()
        """
    )
    run(pytester, trackers="sockets fds").assert_outcomes(passed=1)
    # Control: the tasks tracker reports it as what it is, the loop (its self-pipe and
    # selector go with it), and still no socket or fd line.
    control = run(pytester, trackers="sockets fds tasks")
    assert_leaked(control, "test_it.py::test_forgets_to_close_its_loop", ["*event loop left open*"])
    control.stdout.no_fnmatch_line("  socket *")
    control.stdout.no_fnmatch_line("  fd *")


def test_cleanup_closes_the_socket_through_its_object(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import socket

        def test_leaky():
            global pair
            pair = socket.socketpair()

        def test_after():
            # The objects know they are closed: they will never close a reused number later.
            assert [s.fileno() for s in pair] == [-1, -1]
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["cleanup: socket closed (through its socket); socket closed (through its socket)"]
    )


def test_ignore_pattern_matches_the_socket_description(pytester: pytest.Pytester) -> None:
    pair = run_pair(
        pytester,
        partial(run, pytester),
        case_args=("-o", "leakguard_ignore=sockets: ^socket unix "),
        test_it="""
        import socket

        def test_leaky():
            global pair, udp
            pair = socket.socketpair()
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a near miss
        """,
    )
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(["leakguard: test_it.py::test_leaky leaked 3 resources"])
    assert_leaked(pair.case, "test_it.py::test_leaky", ["  socket udp *"])
    pair.case.stdout.no_fnmatch_line("*socket unix*")

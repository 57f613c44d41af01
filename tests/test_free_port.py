"""free_port: a port free now that no other free_port call, in any process, hands out again soon."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from leakguard.servers import free_port, port_is_free


@pytest.fixture(autouse=True)
def _private_state(state_dir: Path) -> None:
    """Every test here reserves ports in a state dir of its own (the shared ``state_dir``)."""


def test_a_server_can_bind_the_port_at_once() -> None:
    port = free_port()
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
    assert port_is_free(port)


def test_without_time_wait_a_server_that_skips_so_reuseaddr_can_bind_it() -> None:
    port = free_port(time_wait=False)
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()


def test_parallel_calls_in_threads_never_collide() -> None:
    found: list[int] = []
    lock = threading.Lock()

    def pick() -> None:
        for _ in range(40):
            port = free_port(time_wait=False)
            with lock:
                found.append(port)

    threads = [threading.Thread(target=pick) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 320 plain bind(0) calls repeat a port more often than not; reservations must prevent it.
    assert len(found) == 320
    assert len(set(found)) == 320


def test_calls_in_two_xdist_workers_never_collide(pytester: pytest.Pytester) -> None:
    out = pytester.path / "picked"
    out.mkdir()
    pytester.makepyfile(
        f"""
        import os
        import pytest
        import leakguard.servers

        @pytest.mark.parametrize("n", range(40))
        def test_pick(n, free_port):
            ports = [free_port] + [leakguard.servers.free_port(time_wait=False) for _ in range(5)]
            worker = os.environ.get("PYTEST_XDIST_WORKER", "none")
            with open(os.path.join({str(out)!r}, f"{{worker}}-{{n}}"), "w") as f:
                f.write(" ".join(map(str, ports)))
        """
    )
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=40)
    files = list(out.iterdir())
    assert {f.name.split("-")[0] for f in files} == {"gw0", "gw1"}
    ports = [int(p) for f in files for p in f.read_text().split()]
    assert len(ports) == 240
    assert len(set(ports)) == 240


def test_free_port_fixture_gives_a_port_a_test_can_listen_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket

        def test_listen(free_port):
            with socket.create_server(("127.0.0.1", free_port)) as s:
                assert s.getsockname()[1] == free_port
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_only_loopback_hosts_are_served() -> None:
    with pytest.raises(ValueError, match="loopback"):
        free_port("0.0.0.0")

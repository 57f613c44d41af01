"""Free ports that no other ``free_port`` call, in any process of any run, hands out again soon."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from leakguard.core.grace import settle
from leakguard.servers.statedir import state_dir

RESERVE_SECONDS = 60.0
"""How long a port handed out stays reserved against other ``free_port`` calls."""

_ATTEMPTS = 200


def free_port(host: str = "127.0.0.1", *, time_wait: bool = True) -> int:
    """A TCP port on ``host`` that is free now and reserved for ``RESERVE_SECONDS``.

    Binding to port 0 and closing is a race: the kernel may give the same port to the next
    ``bind(0)`` in any process. Two guards close it:

    - a reservation file per port in a per-user directory, created under an ``flock`` so every
      process (xdist workers, parallel runs) sees the others' recent picks;
    - with ``time_wait`` (the default), the trick of Yelp's ``ephemeral-port-reserve``: connect to
      the port once and close the accepted side first, leaving it in ``TIME_WAIT`` for ~60 s.
      The kernel then skips it for other ``bind(0)`` calls, while a server that binds with
      ``SO_REUSEADDR`` (http.server, werkzeug, uvicorn, Go, Node all do) can take it at once.
      A server that binds *without* ``SO_REUSEADDR`` would get ``EADDRINUSE`` for that minute:
      pass ``time_wait=False`` for it.
    """
    _check_loopback(host)
    with _reservation_lock() as directory:
        now = time.time()
        _prune(directory, now)
        for _ in range(_ATTEMPTS):
            port = _kernel_pick(host, time_wait=time_wait)
            marker = directory / str(port)
            try:
                if now - marker.stat().st_mtime < RESERVE_SECONDS:
                    continue  # handed out recently by another call: the kernel raced us
            except FileNotFoundError:
                pass
            marker.write_text(f"{os.getpid()} {now}\n")
            os.utime(marker, (now, now))
            return port
    raise OSError(errno.EADDRNOTAVAIL, f"no free port on {host} after {_ATTEMPTS} attempts")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind ``host:port`` now.

    A bind test, not a connect: connecting fails as soon as the listener closes, but a socket
    in TIME_WAIT or a half-dead listener can still block the next bind. ``SO_REUSEADDR`` is set
    as servers set it, so TIME_WAIT left by the stopped server does not count as taken, while a
    listener anywhere on the port (also on 0.0.0.0) still does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def wait_port_free(port: int, host: str = "127.0.0.1", timeout: float = 5.0) -> bool:
    """Poll ``port_is_free`` with doubling sleeps (1 ms … 100 ms) for up to ``timeout`` seconds."""
    return settle(lambda: port_is_free(port, host), bool, timeout)


def _kernel_pick(host: str, *, time_wait: bool) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        if time_wait:
            # listen(1), not 0: with a zero backlog the connect below can hang on newer kernels.
            sock.listen(1)
            with socket.create_connection((host, port), timeout=5) as client:
                accepted, _ = sock.accept()
                # The side that closes first enters TIME_WAIT: the accepted side owns `port`.
                accepted.close()
                client.recv(1)
    return port


@contextlib.contextmanager
def _reservation_lock() -> Iterator[Path]:
    directory = state_dir("ports")
    # Each call opens its own descriptor, so flock serialises threads of one process too.
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield directory
    finally:
        os.close(fd)  # closing releases the lock


def _prune(directory: Path, now: float) -> None:
    with os.scandir(directory) as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(FileNotFoundError):
                if now - entry.stat().st_mtime >= RESERVE_SECONDS:
                    os.unlink(entry.path)


def _check_loopback(host: str) -> None:
    if host not in ("127.0.0.1", "localhost") and not host.startswith("127."):
        raise ValueError(f"free_port only hands out loopback ports, not {host!r}")


def describe_holders(port: int) -> str:
    """`` (held by pid 123 'name')`` for whoever listens on ``port``, if we may see it."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return ""
    holders = sorted(
        {c.pid for c in conns if c.laddr and c.laddr.port == port and c.pid is not None}
    )
    if not holders:
        return ""
    names = []
    for pid in holders:
        try:
            names.append(f"pid {pid} {psutil.Process(pid).name()!r}")
        except psutil.Error:
            names.append(f"pid {pid}")
    return f" (held by {', '.join(names)})"

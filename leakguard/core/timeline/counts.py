"""Counting the live resources of each kind in a snapshot leakguard took anyway."""

from __future__ import annotations

import socket
import stat
from collections.abc import Mapping
from typing import Any

_STDIO = 3
"""Descriptors 0-2 are rebound by output capture: the fds tracker never counts them either."""
_MAX_PROBED = 4096
"""Socket identities whose kind (port or not) is remembered; past that the memo starts over."""


def _listening(fd: int) -> bool:
    """Whether descriptor ``fd`` holds an address: a listening socket, or a bound, unconnected
    datagram socket (what the ``ports`` tracker reports). Never closes it."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return False
    try:
        try:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                return True
        except OSError:
            return False
        if sock.type != socket.SOCK_DGRAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        try:
            sock.getpeername()
        except OSError:
            return bool(sock.getsockname()[1])
        return False
    finally:
        sock.detach()  # the descriptor is someone else's


class SnapshotCounter:
    """Turns each tracker's snapshot into one count, without holding the snapshot.

    Threads, tasks and processes count their entries. The descriptor trackers share one scan of
    every descriptor (``{(fd, dev, ino): st_mode}``), so each counts its own kind in it: sockets
    that are not ports, ports, and the rest from fd 3 up. Whether a socket is a port needs one
    ``getsockopt``; the answer is kept per identity, so a socket is probed once in its life.
    A scan handed back unchanged (the same object) is not counted again.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        # The last scan counted (a dict of ints: it keeps no resource alive) and its counts.
        self._scan: Mapping[Any, Any] | None = None
        self._scan_counts: dict[str, int] = {}
        self._ports: dict[tuple[int, int, int], bool] = {}

    def observe(self, name: str, snapshot: Mapping[Any, Any]) -> None:
        """Called by the engine with each snapshot of the end-of-test check."""
        if name in ("sockets", "ports", "fds"):
            self.counts[name] = self._descriptors(snapshot).get(name, 0)
        elif name == "tasks":
            # The tasks snapshot also lists open event loops (their handle is a LoopInfo).
            self.counts[name] = sum(1 for h in snapshot.values() if type(h).__name__ != "LoopInfo")
        else:
            self.counts[name] = len(snapshot)

    def take(self) -> dict[str, int]:
        """The counts observed since the last call (and forget them)."""
        counts, self.counts = self.counts, {}
        return counts

    def _descriptors(self, scan: Mapping[Any, Any]) -> dict[str, int]:
        if scan is self._scan:
            return self._scan_counts
        sockets = ports = fds = 0
        memo = self._ports
        if len(memo) > _MAX_PROBED:
            memo.clear()
        for key, mode in scan.items():
            if type(key) is not tuple or len(key) != 3 or type(mode) is not int:
                continue  # a child process's socket (ports): not this process's descriptor
            if stat.S_ISSOCK(mode):
                port = memo.get(key)
                if port is None:
                    port = memo[key] = _listening(key[0])
                if port:
                    ports += 1
                else:
                    sockets += 1
            elif key[0] >= _STDIO:
                fds += 1
        counts = {"sockets": sockets, "ports": ports, "fds": fds}
        self._scan, self._scan_counts = scan, counts
        return counts

"""Sockets held by this process's descendants: identities from ``/proc/PID/fd`` (only when there
are children at all), states from ``/proc/PID/net/*`` (only for sockets that are new)."""

from __future__ import annotations

import os
import socket
import stat

from leakguard.trackers.processes import procfs
from leakguard.trackers.processes import tree as proctree

ChildKey = tuple[str, int, int]
"""``("pid", pid, socket inode)``."""

_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"
_UNIX_ACCEPTCON = 0x00010000


_ANY_CHILD_NOW = (
    (os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) if hasattr(os, "waitid") else None
)
"""``waitid`` arguments that ask about any child without reaping it (made once: read at every
snapshot of ``ports``)."""


def has_children() -> bool:
    """Whether this process has any child at all, in ≈ 1 µs and without reaping anything."""
    if _ANY_CHILD_NOW is None:
        return True  # cannot tell cheaply: look
    try:
        os.waitid(*_ANY_CHILD_NOW)
    except ChildProcessError:
        return False
    except (AttributeError, OSError):
        return True  # cannot tell cheaply: look
    return True


def child_sockets() -> dict[ChildKey, int]:
    """``{("pid", pid, inode): pid}`` for every socket descriptor of every descendant."""
    found: dict[ChildKey, int] = {}
    for pid in proctree.descendant_pids():
        base = f"/proc/{pid}/fd"
        try:
            names = os.listdir(base)
        except OSError:
            continue  # gone, or not ours to look at
        for name in names:
            try:
                st = os.stat(f"{base}/{name}")
            except OSError:
                continue
            if stat.S_ISSOCK(st.st_mode):
                found["pid", pid, st.st_ino] = pid
    return found


class ChildPort:
    """A listening socket a child process holds.

    A plain class: a dataclass costs 0.25-0.5 ms to define (Python 3.10-3.12), at start-up.
    """

    __slots__ = ("label", "pid")

    def __init__(self, pid: int, label: str) -> None:
        self.pid = pid
        self.label = label
        """``tcp 127.0.0.1:8000 LISTEN (pid 4711)``."""


def _ip(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    # /proc prints each 32-bit word in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(words) == 4:
        return socket.inet_ntop(socket.AF_INET, words)
    return "[" + socket.inet_ntop(socket.AF_INET6, words) + "]"


def _inet_ports(pid: int, table: str, inodes: set[int]) -> dict[int, str]:
    ports: dict[int, str] = {}
    try:
        with open(f"/proc/{pid}/net/{table}") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return ports
    for line in lines:
        fields = line.split()
        if len(fields) < 10 or not fields[9].isdigit() or int(fields[9]) not in inodes:
            continue
        local, remote, state = fields[1], fields[2], fields[3]
        host, _, port_hex = local.partition(":")
        addr = f"{_ip(host)}:{int(port_hex, 16)}"
        if table.startswith("tcp") and state == _TCP_LISTEN:
            ports[int(fields[9])] = f"{table} {addr} LISTEN"
        elif table.startswith("udp") and state == _UDP_UNCONNECTED and remote.endswith(":0000"):
            ports[int(fields[9])] = f"{table} {addr}"
    return ports


def _unix_ports(pid: int, inodes: set[int]) -> dict[int, str]:
    ports: dict[int, str] = {}
    try:
        with open(f"/proc/{pid}/net/unix") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return ports
    for line in lines:
        fields = line.split()
        if len(fields) < 7 or not fields[6].isdigit() or int(fields[6]) not in inodes:
            continue
        if int(fields[3], 16) & _UNIX_ACCEPTCON:
            path = fields[7] if len(fields) > 7 else "(unnamed)"
            ports[int(fields[6])] = f"unix {path} LISTEN"
    return ports


def child_ports(keys: list[ChildKey]) -> dict[ChildKey, ChildPort]:
    """Which of these child sockets hold an address (listening TCP/unix, bound UDP).

    Reads the socket tables once per child (milliseconds): only for sockets that are new.
    """
    by_pid: dict[int, set[int]] = {}
    for _, pid, ino in keys:
        by_pid.setdefault(pid, set()).add(ino)
    found: dict[ChildKey, ChildPort] = {}
    for pid, inodes in by_pid.items():
        labels: dict[int, str] = {}
        for table in ("tcp", "tcp6", "udp", "udp6"):
            labels.update(_inet_ports(pid, table, inodes))
        labels.update(_unix_ports(pid, inodes))
        for ino, label in labels.items():
            found["pid", pid, ino] = ChildPort(pid, f"{label} (pid {pid})")
    return found


def command_of(pid: int) -> str:
    """As the processes tracker names the process (its report is the one that stops it)."""
    return procfs.command_text(procfs.read_cmdline(pid)) or "?"

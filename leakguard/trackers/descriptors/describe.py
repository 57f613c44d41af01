"""Describe one descriptor from its number: what it is, where it points, how it was opened.

Everything here works on the descriptor itself (``readlink``, ``fcntl``, ``getsockname``,
``getsockopt``) and needs no new descriptor, so it still works when the process is out of them.
Only called for descriptors that are new after a test: never on the clean path.
"""

from __future__ import annotations

import fcntl
import os
import socket
import stat
import struct
from dataclasses import dataclass
from typing import Any

from leakguard.trackers.descriptors.scan import FdKey

_TCP_STATES = {
    1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
    6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING",
}  # fmt: skip
_ANON_KINDS = {"[eventfd]": "eventfd", "[eventpoll]": "epoll", "inotify": "inotify",
               "[timerfd]": "timerfd", "[signalfd]": "signalfd", "[pidfd]": "pidfd"}  # fmt: skip


def same_descriptor(key: FdKey) -> bool:
    """True while ``key``'s number still names the same open file (not closed, not reused)."""
    fd, dev, ino = key
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def key_of(obj: object, *, sockets: bool) -> FdKey | None:
    """The identity of the descriptor behind ``obj`` (anything with ``fileno()``; a bare int
    could as well be a pid, so it is not taken)."""
    fileno = getattr(obj, "fileno", None)
    if fileno is None or isinstance(obj, int):
        return None
    try:
        st = os.fstat(fd := fileno())
    except (AttributeError, OSError, TypeError, ValueError):
        return None
    if stat.S_ISSOCK(st.st_mode) != sockets:
        return None
    return (fd, st.st_dev, st.st_ino)


def target(fd: int) -> str:
    """What ``/proc/self/fd/N`` points at: a path, ``pipe:[123]``, ``anon_inode:[eventfd]``…"""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


def mode_of(fd: int) -> str:
    """The ``open()``-style mode implied by the descriptor's status flags."""
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError:
        return "?"
    access = flags & os.O_ACCMODE
    append = bool(flags & os.O_APPEND)
    if access == os.O_RDONLY:
        return "r"
    if access == os.O_WRONLY:
        return "a" if append else "w"
    return "a+" if append else "r+"


def describe_fd(fd: int, st_mode: int, mode: str | None = None) -> str:
    """``file /tmp/x/data.log (mode w)``, ``pipe:[123] (read end)``, ``eventfd``, …"""
    where = target(fd)
    if stat.S_ISFIFO(st_mode):
        end = {"r": "read end", "w": "write end"}.get(mode_of(fd), "both ends")
        return f"{where or 'pipe'} ({end})"
    if stat.S_ISDIR(st_mode):
        return f"directory {where}"
    if where.startswith("/memfd:"):
        return f"memfd {where[len('/memfd:') :].removesuffix(' (deleted)')}"
    if where.startswith("anon_inode:"):
        kind = _ANON_KINDS.get(where[len("anon_inode:") :], where)
        pid = _fdinfo(fd, "Pid") if kind == "pidfd" else ""
        return f"pidfd (process {pid})" if pid else kind
    if stat.S_ISCHR(st_mode) or stat.S_ISBLK(st_mode):
        return f"device {where} (mode {mode or mode_of(fd)})"
    return f"file {where or '?'} (mode {mode or mode_of(fd)})"


def _fdinfo(fd: int, field: str) -> str:
    """One field of ``/proc/self/fdinfo/N`` (e.g. a pidfd's ``Pid``), or ``""``."""
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name == field:
                    return value.strip()
    except OSError:
        pass
    return ""


@dataclass(frozen=True)
class SocketInfo:
    """What a socket descriptor is, read from the descriptor (≈ 5 µs)."""

    proto: str
    """``tcp``, ``tcp6``, ``udp``, ``udp6``, ``unix``, ``unix-dgram``, or ``family N``."""
    local: str
    remote: str
    state: str
    listening: bool
    bound: bool

    @property
    def is_port(self) -> bool:
        """A listening socket or a bound, unconnected datagram socket: it holds an address."""
        if self.listening:
            return True
        return self.proto.startswith("udp") and self.bound and not self.remote

    def text(self, *, port: bool = False) -> str:
        addr = self.local
        if self.remote:
            addr = f"{addr} -> {self.remote}"
        parts = [self.proto, addr]
        if self.state and not (port and self.proto.startswith("udp")):
            parts.append(self.state)
        return " ".join(p for p in parts if p)


def _address(family: int, addr: Any) -> tuple[str, bool]:
    """Text for a socket address, and whether it is bound to something specific."""
    if family == socket.AF_INET and isinstance(addr, tuple):
        return f"{addr[0]}:{addr[1]}", addr[1] != 0
    if family == socket.AF_INET6 and isinstance(addr, tuple):
        return f"[{addr[0]}]:{addr[1]}", addr[1] != 0
    if family == socket.AF_UNIX:
        if isinstance(addr, bytes):
            abstract = addr[:1] == b"\0"
            name = "@" + addr[1:].decode(errors="replace") if abstract else os.fsdecode(addr)
        else:
            name = "@" + addr[1:] if addr[:1] == "\0" else str(addr)
        return (name, True) if name else ("(unnamed)", False)
    return repr(addr), bool(addr)


def _proto(family: int, kind: int) -> str:
    v6 = "6" if family == socket.AF_INET6 else ""
    if family in (socket.AF_INET, socket.AF_INET6):
        if kind == socket.SOCK_STREAM:
            return "tcp" + v6
        if kind == socket.SOCK_DGRAM:
            return "udp" + v6
        return f"raw{v6}"
    if family == socket.AF_UNIX:
        return "unix" if kind == socket.SOCK_STREAM else "unix-dgram"
    try:
        return socket.AddressFamily(family).name.removeprefix("AF_").lower()
    except ValueError:
        return f"family {family}"


def probe_socket(fd: int) -> SocketInfo | None:
    """Read a socket's family, addresses and state from its descriptor, without owning it."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return None
    try:
        family, kind = sock.family, sock.type
        try:
            local, bound = _address(family, sock.getsockname())
        except OSError:
            local, bound = "", False
        try:
            remote, _ = _address(family, sock.getpeername())
        except OSError:
            remote = ""
        try:
            listening = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
        except OSError:
            listening = False
        state = ""
        if family in (socket.AF_INET, socket.AF_INET6) and kind == socket.SOCK_STREAM:
            state = _tcp_state(sock)
        elif listening:
            state = "LISTEN"
    finally:
        sock.detach()  # the descriptor belongs to someone else: never close it here
    if family == socket.AF_UNIX and remote == "(unnamed)":
        remote = ""
    if not bound and family in (socket.AF_INET, socket.AF_INET6):
        local = "unbound"
    return SocketInfo(_proto(family, kind), local, remote, state, listening, bound)


def _tcp_state(sock: socket.socket) -> str:
    tcp_info = getattr(socket, "TCP_INFO", None)
    if tcp_info is None:
        return ""
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 8)
    except OSError:
        return ""
    (code,) = struct.unpack_from("B", raw)
    return _TCP_STATES.get(code, f"state {code}")

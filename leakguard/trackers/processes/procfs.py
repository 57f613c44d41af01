"""One process as /proc tells it on Linux (psutil elsewhere): its identity, state, parent and
command line, each read with one ``read`` of a small file.

A process is ``(pid, start)``, never a bare pid: ``start`` is the kernel's start time in clock
ticks since boot on Linux (exact, unlike psutil's ``create_time``, whose boot-time base is only
accurate to a second) and psutil's ``create_time`` elsewhere. `now` returns the same unit, so
"born after this moment" is a comparison of two numbers.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from typing import NamedTuple

LINUX = sys.platform.startswith("linux")

STATE_NAMES = {
    "R": "running",
    "S": "sleeping",
    "D": "disk sleep",
    "T": "stopped",
    "t": "tracing stop",
    "Z": "zombie",
    "X": "dead",
    "I": "idle",
    "W": "paging",
    "P": "parked",
}


class ProcStat(NamedTuple):
    """What /proc/PID/stat says about one process (the fields leakguard uses)."""

    pid: int
    comm: str
    state: str
    ppid: int
    pgid: int
    sid: int
    start: float


@functools.cache
def _ticks_per_second() -> int:
    return os.sysconf("SC_CLK_TCK") if LINUX else 1


def now() -> float:
    """This moment in the unit of `ProcStat.start` (clock ticks since boot on Linux)."""
    if LINUX:
        return time.clock_gettime(time.CLOCK_BOOTTIME) * _ticks_per_second()
    return time.time()


def born_after(start: float, moment: float) -> bool:
    """True when a process that started at ``start`` was born at or after ``moment``.

    The kernel truncates a start time to whole ticks, so a process born in the same tick as
    ``moment`` counts as born after it; the caller also requires it to be absent from the
    snapshot taken at ``moment``, so that tick of doubt cannot let an older process through.
    """
    if LINUX:
        return start >= math.floor(moment)
    return start >= moment - 0.001


def read_proc(path: str, size: int = 4096, whole: bool = False) -> bytes | None:
    """One ``read`` of ``path`` (or, with ``whole``, all of it in ``size`` chunks).

    os.open/os.read: a third of the cost of open() with its buffered-IO wrapper. Chunks stay
    small because ``os.read(fd, n)`` allocates ``n`` bytes first: 1 MB per call costs an mmap.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        data = os.read(fd, size)
        if whole and len(data) == size:
            parts = [data]
            while chunk := os.read(fd, size):
                parts.append(chunk)
            data = b"".join(parts)
        return data
    except OSError:
        return None
    finally:
        os.close(fd)


def read_stat(pid: int) -> ProcStat | None:
    """The process's stat line, or ``None`` when it is gone (or invisible to us)."""
    if not LINUX:
        return _psutil_stat(pid)
    data = read_proc(f"/proc/{pid}/stat")
    if not data:
        return None
    # comm may contain spaces and parentheses: it ends at the *last* ')'.
    head, _, rest = data.rpartition(b")")
    fields = rest.split()
    try:
        return ProcStat(
            pid=pid,
            comm=head.partition(b"(")[2].decode(errors="replace"),
            state=fields[0].decode(),
            ppid=int(fields[1]),
            pgid=int(fields[2]),
            sid=int(fields[3]),
            start=int(fields[19]),
        )
    except (IndexError, ValueError):
        return None


def _psutil_stat(pid: int) -> ProcStat | None:
    # psutil is imported only off Linux, where it is needed: on Linux /proc says it all, and
    # importing psutil costs ≈ 6 ms of every run's start-up.
    import psutil

    states = {
        psutil.STATUS_RUNNING: "R",
        psutil.STATUS_SLEEPING: "S",
        psutil.STATUS_DISK_SLEEP: "D",
        psutil.STATUS_STOPPED: "T",
        psutil.STATUS_ZOMBIE: "Z",
        psutil.STATUS_DEAD: "X",
        psutil.STATUS_IDLE: "I",
    }
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            status = proc.status()
            return ProcStat(
                pid=pid,
                comm=proc.name(),
                state=states.get(status, "S"),
                ppid=proc.ppid(),
                pgid=os.getpgid(pid),
                sid=os.getsid(pid),
                start=proc.create_time(),
            )
    except (psutil.Error, OSError):
        return None


def command_text(argv: list[str], limit: int = 40) -> str:
    """A command line for a report: the program's base name, whitespace folded, shortened
    to ``limit`` characters (``…`` when cut)."""
    if argv and os.path.isabs(argv[0]):
        argv = [os.path.basename(argv[0]), *argv[1:]]
    text = " ".join(" ".join(argv).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_cmdline(pid: int) -> list[str]:
    """The process's argv (empty for a zombie or a kernel thread)."""
    if not LINUX:
        import psutil

        try:
            return psutil.Process(pid).cmdline()
        except psutil.Error:
            return []
    data = read_proc(f"/proc/{pid}/cmdline", 1 << 14, whole=True)
    if not data:
        return []
    return [part.decode(errors="replace") for part in data.rstrip(b"\0").split(b"\0")]

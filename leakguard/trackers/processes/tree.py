"""The process tree below this process, read cheaply from /proc on Linux (psutil elsewhere).

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


def _read(path: str, size: int = 4096, whole: bool = False) -> bytes | None:
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
    data = _read(f"/proc/{pid}/stat")
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
    data = _read(f"/proc/{pid}/cmdline", 1 << 14, whole=True)
    if not data:
        return []
    return [part.decode(errors="replace") for part in data.rstrip(b"\0").split(b"\0")]


def mark_epoch(pid: int, mark: bytes) -> int | None:
    """The spawn tag of the run's ``mark`` (``NAME=VALUE``) in the process's initial environment.

    ``None``: not marked. ``0``: marked, untagged (it inherited the run's plain environment).
    Otherwise the epoch of the spawn it descends from: leakguard tags the mark in the
    environment it hands each ``subprocess``/``posix_spawn`` child (``VALUE:EPOCH``).
    """
    if not LINUX:
        import psutil

        try:
            name = mark.decode().partition("=")[0]
            found = psutil.Process(pid).environ().get(name)
        except (psutil.Error, OSError):
            return None
        return None if found is None else _tag_of(f"{name}={found}".encode() + b"\0", mark)
    data = _read(f"/proc/{pid}/environ", 1 << 14, whole=True)
    return _tag_of(data, mark) if data else None


def _tag_of(environ: bytes, mark: bytes) -> int | None:
    if environ.startswith(mark):
        at = len(mark)
    else:
        found = environ.find(b"\0" + mark)
        if found < 0:
            return None
        at = found + 1 + len(mark)
    end = environ.find(b"\0", at)
    value = environ[at:] if end < 0 else environ[at:end]
    if not value:
        return 0
    if value[:1] == b":" and value[1:].isdigit():
        return int(value[1:])
    return None  # another variable whose value merely starts like ours


_RANGE_SCAN_MAX = 512


def last_pid() -> int | None:
    """The pid the kernel handed out last (``/proc/loadavg``, 5th field), or ``None``."""
    if not LINUX:
        return None
    data = _read("/proc/loadavg", 256)
    try:
        return int(data.split()[4]) if data else None
    except (IndexError, ValueError):
        return None


def marked_pids(mark: bytes, after: int | None = None, upto: int | None = None) -> list[int]:
    """Processes whose environment holds ``mark``.

    With ``after``/``upto`` (two `last_pid` readings), only pids handed out in between are
    looked at: pids are allocated in increasing order, so a process born since the first
    reading has one of them (a wrap-around falls back to the full scan). That is a few reads
    per spawning test instead of one per process on the machine (≈ 0.2–0.6 ms).
    Other users' processes fail to open at once (EACCES).
    """
    if not LINUX:
        import psutil

        return [p.pid for p in psutil.process_iter() if mark_epoch(p.pid, mark) is not None]
    me = os.getpid()
    if after is not None and upto is not None and 0 <= upto - after <= _RANGE_SCAN_MAX:
        # Direct reads: /proc/<tid> of a thread opens too, so a match must be a leader.
        candidates = [str(pid) for pid in range(after + 1, upto + 1)]
        check_leader = True
    else:
        candidates = [name for name in os.listdir("/proc") if name.isdigit()]
        check_leader = False
    found: list[int] = []
    for name in candidates:
        pid = int(name)
        if pid == me:
            continue
        data = _read(f"/proc/{name}/environ", 1 << 14, whole=True)
        if data and _tag_of(data, mark) is not None and (not check_leader or _is_leader(pid)):
            found.append(pid)
    return found


def _is_leader(pid: int) -> bool:
    data = _read(f"/proc/{pid}/status", 4096) or b""
    for line in data.splitlines():
        if line.startswith(b"Tgid:"):
            return int(line.split()[1]) == pid
    return False


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid``: ``/proc/PID/task/*/children`` (≈ 2 µs + 2 µs per thread).

    Each thread lists the children it forked, so every thread's file is read.
    """
    if not LINUX:
        import psutil

        try:
            return [c.pid for c in psutil.Process(pid).children()]
        except psutil.Error:
            return []
    result: list[int] = []
    task_dir = f"/proc/{pid}/task"
    try:
        tids = os.listdir(task_dir)
    except OSError:
        return result
    for tid in tids:
        data = _read(f"{task_dir}/{tid}/children", 4096, whole=True)
        if data:
            result.extend(int(p) for p in data.split())
    return result


def forking_thread(pid: int, child: int) -> int | None:
    """The thread (native id) of ``pid`` whose ``children`` file lists ``child``: the one that
    forked it (a child outlives its forking thread by moving to another thread's list)."""
    if not LINUX:
        return None
    task_dir = f"/proc/{pid}/task"
    try:
        tids = os.listdir(task_dir)
    except OSError:
        return None
    wanted = str(child).encode()
    for tid in tids:
        data = _read(f"{task_dir}/{tid}/children", 4096, whole=True)
        if data and wanted in data.split():
            return int(tid)
    return None


def thread_child_pids(pid: int, tid: int | None = None) -> list[int]:
    """Children forked by one thread (default: the main thread): one read, ≈ 1.5 µs."""
    if not LINUX:
        return child_pids(pid)
    data = _read(f"/proc/{pid}/task/{pid if tid is None else tid}/children", 4096, whole=True)
    return [int(p) for p in data.split()] if data else []


class ChildrenFile:
    """One thread's ``children`` file kept open: a look is one ``pread`` (≈ 0.4 µs, against
    ≈ 2 µs for open + read + close). The raw bytes are compared, never parsed, on the clean
    path. Elsewhere than Linux it falls back to psutil (and costs what psutil costs)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.fd = -1
        self.identity: tuple[int, int] | None = None
        if LINUX:
            try:
                self.fd = os.open(f"/proc/{pid}/task/{pid}/children", os.O_RDONLY | os.O_CLOEXEC)
                st = os.fstat(self.fd)
                self.identity = (st.st_dev, st.st_ino)
            except OSError:
                self.fd = -1

    def read(self) -> bytes:
        if self.fd < 0:
            return " ".join(map(str, thread_child_pids(self.pid))).encode()
        try:
            data = os.pread(self.fd, 4096, 0)
        except OSError:
            return b""
        if len(data) == 4096:
            return _read(f"/proc/{self.pid}/task/{self.pid}/children", 4096, whole=True) or b""
        return data

    def close(self) -> None:
        # A test may have closed our number and something else may hold it now: close it only
        # if it is still the file we opened (do no harm: never a bare number of someone else's).
        if self.fd >= 0:
            try:
                st = os.fstat(self.fd)
            except OSError:
                st = None
            if st is not None and (st.st_dev, st.st_ino) == self.identity:
                os.close(self.fd)
            self.fd = -1


def descendant_pids(root: int | None = None) -> list[int]:
    """All live descendants of ``root`` (default: this process), parents before children."""
    start = os.getpid() if root is None else root
    found: list[int] = []
    frontier = child_pids(start)
    while frontier:
        found.extend(frontier)
        nxt: list[int] = []
        for pid in frontier:
            nxt.extend(child_pids(pid))
        frontier = nxt
    return found


def ancestry(pid: int, limit: int = 64) -> list[int]:
    """``pid``'s parent, grandparent … up to (not including) pid 0, nearest first."""
    chain: list[int] = []
    current = pid
    while limit > 0:
        stat = read_stat(current)
        if stat is None or stat.ppid <= 0:
            break
        chain.append(stat.ppid)
        current = stat.ppid
        limit -= 1
    return chain

"""The process tree around this process: children (per thread, through a kept-open file),
descendants and ancestry, read cheaply from /proc on Linux (psutil elsewhere)."""

from __future__ import annotations

import os

from leakguard.trackers.processes.procfs import LINUX, read_proc, read_stat

SEEN_IN_PHASE = "processes"
"""The key under which the ``processes`` tracker leaves its snapshot in the phase it took it for
(`Phase.shared`): ``ports`` reads it rather than asking the kernel again whether any child
exists."""


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
        data = read_proc(f"{task_dir}/{tid}/children", 4096, whole=True)
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
        data = read_proc(f"{task_dir}/{tid}/children", 4096, whole=True)
        if data and wanted in data.split():
            return int(tid)
    return None


def thread_child_pids(pid: int, tid: int | None = None) -> list[int]:
    """Children forked by one thread (default: the main thread): one read, ≈ 1.5 µs."""
    if not LINUX:
        return child_pids(pid)
    data = read_proc(f"/proc/{pid}/task/{pid if tid is None else tid}/children", 4096, whole=True)
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
            return read_proc(f"/proc/{self.pid}/task/{self.pid}/children", 4096, whole=True) or b""
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

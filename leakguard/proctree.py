"""The process tree below this process, read cheaply from /proc on Linux (psutil elsewhere)."""

from __future__ import annotations

import os
import sys

import psutil

_LINUX = sys.platform.startswith("linux")


def child_pids(pid: int) -> list[int]:
    """Direct children of ``pid``: ``/proc/PID/task/*/children`` (≈ 15–20 µs) on Linux."""
    if not _LINUX:
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
        try:
            with open(f"{task_dir}/{tid}/children", "rb") as f:
                data = f.read()
        except OSError:
            continue
        if data:
            result.extend(int(p) for p in data.split())
    return result


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

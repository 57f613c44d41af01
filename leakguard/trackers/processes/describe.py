"""How a leaked process is described: its command, its relation to the test, and the spawn it
came from (its own, or for a grandchild or an orphan, the spawn it descends from)."""

from __future__ import annotations

import os
import sys
from typing import Any

from leakguard.core.origin import Origin, RawOrigin
from leakguard.core.tracker import Resource
from leakguard.trackers.processes import procfs
from leakguard.trackers.processes.cleanup import Proc
from leakguard.trackers.processes.ownership import ProcKey
from leakguard.trackers.processes.recording import SpawnLog, SpawnRecord

MAX_COMMAND = 40


def describe(tracker: str, key: ProcKey, proc: Proc, log: SpawnLog) -> Resource[ProcKey]:
    state = procfs.STATE_NAMES.get(proc.stat.state, proc.stat.state)
    if proc.zombie:
        detail = f"exited, never waited for; parent {proc.stat.ppid}"
    elif proc.relation == "orphan":
        detail = f"{state}; its parent exited, now a child of {proc.stat.ppid}"
    else:
        detail = f"{state}; parent {proc.stat.ppid}"
    origin, direct = origin_of(proc, log)
    return Resource(
        tracker,
        key,
        "zombie" if proc.zombie else "process",
        f"{proc.pid} '{command_of(proc)}' ({proc.relation})",
        detail=detail,
        origin=Origin.from_raw(origin) if origin is not None else None,
        verb="spawned" if direct else "via a child spawned",
        handle=proc,
    )


def origin_of(proc: Proc, log: SpawnLog) -> tuple[RawOrigin | None, bool]:
    """Where ``proc`` came from, and whether that is its own spawn (not an ancestor's)."""
    if proc.record is not None and proc.record.origin is not None:
        return proc.record.origin, True
    for pid, start in reversed(proc.lineage):
        record = log.find(pid, start)
        if record is not None and record.origin is not None:
            return record.origin, False
    if proc.relation == "orphan":
        record = orphan_ancestor(proc, log)
        if record is not None and record.origin is not None:
            return record.origin, False
    return None, False


def orphan_ancestor(proc: Proc, log: SpawnLog) -> SpawnRecord | None:
    """The spawn this orphan most likely descends from (its real parent is gone).

    Its process group or session leader when that was a recorded spawn; otherwise the latest
    spawn of the test, born no later than the orphan, that has exited since (an orphan's parent
    is by definition gone); otherwise the latest spawn of the test.
    """
    candidates = [
        r
        for r in log.records.values()
        if r.born_by >= proc.not_before and procfs.born_after(proc.start, r.born_from)
    ]
    for record in candidates:
        if record.pid in (proc.stat.pgid, proc.stat.sid):
            return record
    exited = [r for r in candidates if _exited(r)]
    return max(exited or candidates, key=lambda r: r.seq, default=None)


def command_of(proc: Proc) -> str:
    """The command line, shortened: ``'sleep 30'``, ``'fork of 4700'``, ``'multiprocessing w'``."""
    owner: Any = proc.owner()
    mp = sys.modules.get("multiprocessing.process")
    if mp is not None and isinstance(owner, mp.BaseProcess):
        return procfs.command_text(["multiprocessing", owner.name], MAX_COMMAND)
    argv = procfs.read_cmdline(proc.pid)
    record = proc.record
    forked = record is not None and record.how in ("os.fork", "os.forkpty")
    if (forked and not argv) or argv == procfs.read_cmdline(proc.me):
        return f"fork of {proc.me}"  # a fork that never exec'd: its argv is ours
    if not argv and record is not None and record.argv is not None:
        raw = record.argv
        argv = (
            [os.fsdecode(raw)] if isinstance(raw, (str, bytes)) else [os.fsdecode(a) for a in raw]
        )
    return procfs.command_text(argv or [proc.stat.comm], MAX_COMMAND)


def _exited(record: SpawnRecord) -> bool:
    stat = procfs.read_stat(record.pid)
    return stat is None or not record.matches(stat.start) or stat.state in "ZX"

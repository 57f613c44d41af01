"""Stopping leaked processes safely: deepest first, SIGCONT + SIGTERM, a bounded wait, SIGKILL
for the survivors, then reap what is ours to reap and close a leaked ``Popen``'s pipes.

Safety: a process is signalled only if, checked again right before each signal, it is the same
``(pid, start)`` that was reported, was born after the test's snapshot, and has proof of
lineage: its parent chain reaches this process, or a spawn of the test is on record for it (a
report through the verified report pipe, or the test's epoch in the tag of its environment
mark). The run's mark alone finds candidates; it never justifies a signal. Nothing is ever
chosen by port, name or command line. Where the kernel offers pidfds, the signal goes through
one opened *before* the check, so a pid recycled between check and signal cannot be hit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from leakguard.core.grace import settle
from leakguard.core.lineage import LINEAGE, NO_EPOCH
from leakguard.trackers.processes import mark as proc_mark
from leakguard.trackers.processes import procfs
from leakguard.trackers.processes import tree as proctree
from leakguard.trackers.processes.recording import SpawnRecord

MARK_ONLY = "found by the run's mark only: outside the test's tree, no spawn of the test on record"
KILL_WAIT = 2.0
"""Seconds to wait after SIGKILL (a process in uninterruptible sleep can take a moment)."""


class Proc:
    """One process the tracker found new since the snapshot (the handle of its `Resource`).

    A plain class: a dataclass costs 0.25-0.5 ms to define (Python 3.10-3.12), at start-up.
    """

    __slots__ = (
        "depth",
        "epoch",
        "lineage",
        "mark",
        "me",
        "not_before",
        "pid",
        "proof",
        "record",
        "relation",
        "start",
        "stat",
        "zombie",
    )  # fmt: skip

    def __init__(
        self,
        pid: int,
        start: float,
        relation: str,
        depth: int,
        zombie: bool,
        stat: procfs.ProcStat,
        not_before: float,
        mark: bytes,
        me: int,
        record: SpawnRecord | None = None,
        lineage: list[tuple[int, float]] | None = None,
        epoch: int = NO_EPOCH,
        proof: str = "tree",
    ) -> None:
        self.pid = pid
        self.start = start
        self.relation = relation
        self.depth = depth
        self.zombie = zombie
        self.stat = stat
        self.not_before = not_before
        self.mark = mark
        self.me = me
        self.record = record
        self.lineage: list[tuple[int, float]] = lineage if lineage is not None else []
        self.epoch = epoch  # the epoch of the test (or fixture, or block) it was found for
        # What ties it to that owner: "tree" (its parent chain), "pipe" (a forked descendant
        # reported it through the verified report pipe), "tag" (its environment mark carries
        # the owner's epoch), or "" (the run's mark only: reported, never signalled).
        self.proof = proof

    def owner(self) -> Any | None:
        return self.record.owner_object() if self.record is not None else None


def _why_not_ours(proc: Proc) -> str | None:
    """``None`` when ``proc`` may be signalled now; otherwise the reason it may not."""
    if proc.pid <= 1 or proc.pid == proc.me:
        return "not a child process"
    stat = procfs.read_stat(proc.pid)
    if stat is None or stat.start != proc.start:
        return "gone"
    if not procfs.born_after(stat.start, proc.not_before):
        return "born before the test"
    if proc.me in proctree.ancestry(proc.pid):
        return None
    if proc.proof == "pipe":
        return None  # read from our own pipe (identity checked), with the test's epoch
    tag = proc_mark.mark_epoch(proc.pid, proc.mark)
    if tag is not None and tag != NO_EPOCH and LINEAGE.belongs(tag, proc.epoch):
        return None
    if tag is not None:
        return MARK_ONLY
    return "neither a descendant of the test process nor tied to one of its spawns"


def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError:
        return None
    return fd


def send_verified(proc: Proc, sig: int) -> str | None:
    """Send ``sig`` if ``proc`` is still provably ours; ``None`` on success, else the reason."""
    fd = _pidfd(proc.pid)
    try:
        reason = _why_not_ours(proc)
        if reason is not None:
            return reason
        sender = getattr(signal, "pidfd_send_signal", None)
        if fd is not None and sender is not None:
            sender(fd, sig)
        else:
            os.kill(proc.pid, sig)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        return "not permitted"
    finally:
        if fd is not None:
            os.close(fd)
    return None


def reap(proc: Proc) -> bool:
    """Collect ``proc``'s exit status if it is our child and has exited; True once it is gone.

    A ``Popen`` or ``multiprocessing.Process`` that owns the child reaps it itself, so its
    ``returncode`` stays right for whoever asks later.
    """
    owner = proc.owner()
    try:
        if isinstance(owner, subprocess.Popen):
            return owner.poll() is not None
        mp = sys.modules.get("multiprocessing.process")
        if mp is not None and isinstance(owner, mp.BaseProcess):
            return not owner.is_alive()
    except (OSError, AssertionError, ValueError):
        pass
    stat = procfs.read_stat(proc.pid)
    if stat is None or stat.start != proc.start:
        return True
    if stat.ppid != proc.me:
        # Not ours to reap: its parent (or init, once the parent is gone) collects it.
        return stat.state in "ZX"
    try:
        pid, _status = os.waitpid(proc.pid, os.WNOHANG)
    except ChildProcessError:
        return True  # another waiter (asyncio's child watcher, a Popen) collected it
    return pid != 0


def _wait(procs: list[Proc], deadline: float) -> list[Proc]:
    """Wait until every process is gone or ``deadline``; return those still there."""
    pending = list(procs)

    def still_there() -> list[Proc]:
        pending[:] = [p for p in pending if not reap(p)]
        return pending

    return settle(still_there, lambda left: not left, deadline - time.monotonic(), max_delay=0.05)


def _close_pipes(proc: Proc) -> bool:
    owner = proc.owner()
    if not isinstance(owner, subprocess.Popen):
        return False
    closed = False
    for stream in (owner.stdin, owner.stdout, owner.stderr):
        if stream is not None and not stream.closed:
            with contextlib.suppress(OSError):
                stream.close()
            closed = True
    return closed


def stop(procs: Sequence[Proc], timeout: float) -> list[str]:
    """Stop every process in ``procs``; one outcome per process, in the same order."""
    outcomes: dict[int, str] = {}
    live = sorted((p for p in procs if not p.zombie), key=lambda p: -p.depth)
    signalled: list[Proc] = []
    for proc in live:
        if reap(proc):
            outcomes[id(proc)] = f"process {proc.pid} had already exited"
    # Signal the whole set before waiting on any of it: a parent that dies of its child's
    # death is then reported as terminated, which is what happened.
    for proc in live:
        if id(proc) in outcomes:
            continue
        send_verified(proc, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        reason = send_verified(proc, signal.SIGTERM)
        if reason == "gone":
            outcomes[id(proc)] = f"process {proc.pid} terminated"
        elif reason is not None:
            outcomes[id(proc)] = f"process {proc.pid} left running (not provably ours: {reason})"
        else:
            signalled.append(proc)
    survivors = _wait(signalled, time.monotonic() + max(timeout, 0.0))
    for proc in signalled:
        if proc not in survivors:
            outcomes[id(proc)] = f"process {proc.pid} terminated"
    killed: list[Proc] = []
    for proc in survivors:
        reason = send_verified(proc, signal.SIGKILL)
        if reason is None or reason == "gone":
            killed.append(proc)
        else:
            outcomes[id(proc)] = f"process {proc.pid} left running (not provably ours: {reason})"
    stuck = _wait(killed, time.monotonic() + KILL_WAIT)
    for proc in killed:
        outcomes[id(proc)] = (
            f"process {proc.pid} still there after SIGKILL ({_state(proc)})"
            if proc in stuck
            else f"process {proc.pid} killed (ignored SIGTERM)"
        )
    # Zombies last: stopping their parents above may have handed them to init already.
    for proc in procs:
        if proc.zombie:
            outcomes[id(proc)] = (
                f"zombie {proc.pid} reaped"
                if reap(proc)
                else f"zombie {proc.pid} left (its parent {proc.stat.ppid} has not waited for it)"
            )
    results: list[str] = []
    for proc in procs:
        outcome = outcomes.get(id(proc), f"process {proc.pid} left as is")
        if _close_pipes(proc):
            outcome += " (pipes closed)"
        results.append(outcome)
    return results


def _state(proc: Proc) -> str:
    stat = procfs.read_stat(proc.pid)
    return procfs.STATE_NAMES.get(stat.state, stat.state) if stat else "gone"

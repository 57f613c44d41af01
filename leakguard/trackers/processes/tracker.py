"""The ``processes`` tracker: children, deeper descendants, orphans and zombies a test leaves.

The clean path reads no process table. A snapshot is a set of ``(pid, start)``: the direct
children, plus every process carrying this run's environment mark (how a descendant is still
found after its parent exited and it was re-parented to init). That set is re-read only when
the spawn counter moved (every Python-level way to start a process bumps it) or the main
thread's children file changed (a fork from C code, a child reaped); otherwise the previous
read is reused, for ≈ 3 µs. Only new identities are classified, walked and described, and
only those the test's own lineage spawned count (`proc_owner`): a fixture's processes are its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from leakguard.core import compat
from leakguard.core.lineage import LINEAGE
from leakguard.core.tracker import Phase, Resource, Tracker
from leakguard.trackers.processes import cleanup as proc_cleanup
from leakguard.trackers.processes import describe as proc_describe
from leakguard.trackers.processes import mark as proc_mark
from leakguard.trackers.processes import procfs
from leakguard.trackers.processes import recording as proc_spawns
from leakguard.trackers.processes import tree as proctree
from leakguard.trackers.processes.cleanup import Proc
from leakguard.trackers.processes.interrupts import GUARD
from leakguard.trackers.processes.ownership import Judge, ProcKey
from leakguard.trackers.processes.recording import SpawnLog
from leakguard.trackers.processes.snapshot import (
    ProcHandle,
    ProcSnapshot,
    SnapshotCache,
    helper_pids,
)


class ProcessTracker(Tracker[ProcKey, ProcHandle]):
    name = "processes"

    def __init__(self) -> None:
        self._log: SpawnLog | None = None
        self._me = os.getpid()
        self._mp_watched = False
        self._cache = SnapshotCache()
        # What new_since found last, and for which snapshot: one of those gone means one of
        # the test's processes ended during the grace, so a daemon it left may now be out there.
        self._last_found: tuple[int, frozenset[ProcKey]] = (0, frozenset())

    def install(self) -> None:
        self._me = os.getpid()
        before_mark = proc_mark.last_pid()
        self._log = proc_spawns.acquire()
        log = self._log
        if log.users == 1 and log.spawns == 0 and log.previous_mark is None:
            # A mark made just now: only a process born since can carry it, so the first
            # snapshot reads the few pids handed out since, not every process on the machine
            # (≈ 2 ms of start-up on an idle box; it grows with the machine's process count).
            self._cache.scanned_upto = before_mark
        self._log.on_spawn = GUARD.spawned
        self._cache.open(self._me)

    def uninstall(self) -> None:
        if self._log is not None:
            if self._mp_watched:
                proc_spawns.unwatch_multiprocessing()
                self._mp_watched = False
            proc_spawns.release(self._log)
            self._log = None
        self._cache.close()

    @property
    def log(self) -> SpawnLog:
        if self._log is None:
            self.install()
        assert self._log is not None
        return self._log

    # --- the clean path --------------------------------------------------------------------
    def snapshot(self, phase: Phase | None = None) -> ProcSnapshot:
        log = self.log
        if not self._mp_watched:
            self._mp_watched = proc_spawns.watch_multiprocessing(log)
        if os.getpid() != self._me:
            self._adopt(log)
        if phase is not None and phase.name in ("grace", "live"):
            # A fresh look on every grace poll: a descendant of a descendant can fork a daemon
            # or exit with no sign in our own children or spawn count, and the cached read
            # would miss both (a daemon left by a grandchild shell went unseen under load).
            self._cache.invalidate()
        taken_at = procfs.now()
        snap = ProcSnapshot(self._cache.read(self._me, log), taken_at, LINEAGE.current)
        if phase is not None:  # for ``ports``, whose look at children it spares (see there)
            phase._shared[proctree.SEEN_IN_PHASE] = snap
        return snap

    def _adopt(self, log: SpawnLog) -> None:
        """Tests run in a forked copy of the process that installed us (pytest-forked): the
        copy's children are the ones to watch, and its spawns its own to record."""
        self._me = os.getpid()
        self._cache.adopt(self._me)
        log.owner_pid = self._me
        log.records.clear()
        log.pipe.reported.clear()

    # --- what changed ----------------------------------------------------------------------
    def new_since(
        self, before: Mapping[ProcKey, ProcHandle], after: Mapping[ProcKey, ProcHandle]
    ) -> dict[ProcKey, ProcHandle]:
        if after.keys() <= before.keys():
            return {}
        judge = self._judge(before)
        found: dict[ProcKey, ProcHandle] = {}
        exited = self._judge_all(after.keys() - before.keys(), judge, found)
        last_before, last_found = self._last_found
        if last_before == id(before) and not last_found <= found.keys():
            exited = True  # one of the test's processes ended since the last poll
        if exited:
            # What an exiting process of the test left behind (a daemon it started, now
            # re-parented to init) shows only in a fresh look for the run's mark.
            self._cache.invalidate()
            fresh = self.snapshot()
            self._judge_all(fresh.keys() - before.keys() - found.keys(), judge, found)
        self._last_found = (id(before), frozenset(found))
        return found

    def _judge(self, before: Mapping[ProcKey, ProcHandle]) -> Judge:
        snap = before if isinstance(before, ProcSnapshot) else None
        return Judge(
            me=self._me,
            # The epoch open when `before` was taken: the test's (or the fixture's being set
            # up), even when asked after that epoch ended (an interrupt during the grace).
            epoch=snap.epoch if snap is not None else LINEAGE.current,
            not_before=snap.taken_at if snap is not None else 0.0,
            old={key[0] for key in before},
            helpers=helper_pids(),
            log=self.log,
        )

    def _judge_all(
        self, keys: Iterable[ProcKey], judge: Judge, found: dict[ProcKey, ProcHandle]
    ) -> bool:
        """Add the test's processes among ``keys`` (and their subtrees) to ``found``; True
        when one of them is a child of the test that has exited."""
        exited = False
        for key in keys:
            if key in found:
                continue
            proc = judge.classify(key)
            if proc is None:
                continue
            if proc.zombie and proc.relation == "child of test":
                exited = True
                if self._collected_quietly(proc):
                    continue
            found[key] = proc
            if not proc.zombie:
                judge.add_subtree(proc, found)
        return exited

    def _collected_quietly(self, proc: Proc) -> bool:
        """Reap an exited child that nobody would report; False when it is a leak to report.

        A ``Popen`` the test still holds and never waited for is reported (``exited, never
        waited for``) and reaped at cleanup through its own ``poll()``, so ``returncode``
        stays right. One the test dropped while its child ran would be reaped by
        ``subprocess`` at the next ``Popen()``: leakguard reaps it now, through its ``poll()``.
        A ``multiprocessing.Process`` is reaped through ``is_alive()``, as it does itself.
        """
        record = proc.record
        if record is None:
            return False  # forked from C: nothing in this process will wait for it
        owner = record.owner_object()
        if isinstance(owner, subprocess.Popen) and not _dropped(owner):
            return False
        if owner is None and record.how != "subprocess.Popen":
            return False  # os.fork / posix_spawn: only the test could have waited
        return proc_cleanup.reap(proc)

    # --- describing ------------------------------------------------------------------------
    def creator_epoch(self, key: ProcKey, handle: ProcHandle) -> int | None:
        # Only what a record proves: a spawn record, or a descendant's report on the pipe.
        pid, start = key
        record = self.log.find(pid, start)
        if record is not None:
            return record.epoch
        reported = self.log.pipe.reported.get(pid)
        return reported[1] if reported is not None and reported[0] == start else None

    def describe(self, key: ProcKey, handle: ProcHandle) -> Resource[ProcKey]:
        proc = handle if handle is not None else self._live(key)
        return proc_describe.describe(self.name, key, proc, self.log)

    def _live(self, key: ProcKey) -> Proc:
        """A process from a plain snapshot (the fixture handle's ``snapshot()``): described by
        where it hangs now, whoever owns it."""
        pid, start = key
        helpers = helper_pids()
        judge = Judge(self._me, LINEAGE.current, 0.0, set(), helpers, self.log)
        stat = procfs.read_stat(pid) or procfs.ProcStat(pid, "?", "X", 0, 0, 0, start)
        chain = proctree.ancestry(pid) if stat.state != "X" else []
        if pid in helpers:
            return judge.proc(stat, "multiprocessing helper", 1, "tree")
        if stat.state == "X":
            return judge.proc(stat, "gone", 1, "")
        if self._me not in chain:
            return judge.proc(stat, "orphan", len(chain), "")
        depth = chain.index(self._me) + 1
        relation = {1: "child of test", 2: "grandchild"}.get(depth, "descendant")
        return judge.proc(stat, relation, depth, "tree")

    # --- cleaning up -----------------------------------------------------------------------
    def cleanup(self, resources: Sequence[Resource[ProcKey]], timeout: float) -> list[str]:
        procs = [r.handle for r in resources]
        if not all(isinstance(p, Proc) for p in procs):
            return [f"{r.kind} not cleaned up (no process handle)" for r in resources]
        try:
            return proc_cleanup.stop(procs, timeout)
        finally:
            self._cache.invalidate()  # the cached tree no longer holds what was just stopped

    def identify(self, obj: object) -> ProcKey | None:
        pid: int | None = None
        mp = sys.modules.get("multiprocessing.process")
        aio = sys.modules.get("asyncio.subprocess")
        ps = sys.modules.get("psutil")  # not imported here: a psutil.Process implies it is
        if isinstance(obj, subprocess.Popen) or (
            (ps is not None and isinstance(obj, ps.Process))
            or (mp is not None and isinstance(obj, mp.BaseProcess))
            or (aio is not None and isinstance(obj, aio.Process))
        ):
            pid = getattr(obj, "pid", None)
        if not isinstance(pid, int):
            return None
        stat = procfs.read_stat(pid)
        return (pid, stat.start) if stat is not None else None


def _dropped(popen: subprocess.Popen[Any]) -> bool:
    """True when only ``subprocess`` itself still holds ``popen``: ``Popen.__del__`` keeps a
    dropped ``Popen`` whose child still ran in ``subprocess._active`` (CPython 3.10-3.13) until
    the next ``Popen()`` reaps it."""
    return any(p is popen for p in compat.popens_to_reap())

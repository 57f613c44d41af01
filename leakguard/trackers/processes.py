"""The ``processes`` tracker: children, deeper descendants, orphans and zombies a test leaves.

The clean path reads no process table. A snapshot is a set of ``(pid, start)``: the direct
children, plus every process carrying this run's environment mark (how a descendant is still
found after its parent exited and it was re-parented to init). That set is re-read only when
the spawn counter moved (every Python-level way to start a process bumps it) or the main
thread's children file changed (a fork from C code, a child reaped); otherwise the previous
read is reused, for ≈ 3 µs. Only new identities are classified, walked and described.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psutil

from leakguard import proctree
from leakguard.tracker import Key, Resource, Tracker
from leakguard.trackers import proc_cleanup, proc_describe, proc_spawns
from leakguard.trackers.proc_cleanup import Proc
from leakguard.trackers.proc_spawns import SpawnLog

_MAX_DEPTH = 32
ProcKey = tuple[int, float]


class ProcSnapshot(dict[Key, Any]):
    """Identities ``(pid, start)`` plus when the snapshot was taken (for "born after")."""

    __slots__ = ("taken_at",)

    def __init__(self, keys: Iterable[ProcKey], taken_at: float) -> None:
        super().__init__(dict.fromkeys(keys))
        self.taken_at = taken_at


def helper_pids() -> set[int]:
    """multiprocessing's resource tracker and forkserver: started once per run, on first use,
    by whichever test happens to need them; they belong to the run, not to that test."""
    pids: set[int] = set()
    tracker_mod = sys.modules.get("multiprocessing.resource_tracker")
    pid = getattr(getattr(tracker_mod, "_resource_tracker", None), "_pid", None)
    if isinstance(pid, int):
        pids.add(pid)
    forkserver_mod = sys.modules.get("multiprocessing.forkserver")
    pid = getattr(getattr(forkserver_mod, "_forkserver", None), "_forkserver_pid", None)
    if isinstance(pid, int):
        pids.add(pid)
    return pids


class ProcessTracker(Tracker):
    name = "processes"

    def __init__(self) -> None:
        self._log: SpawnLog | None = None
        self._me = os.getpid()
        self._mp_watched = False
        # The last full read, reused while nothing can have changed it.
        self._keys: list[ProcKey] = []
        self._tree: list[ProcKey] = []  # children (and the forkserver's)
        self._outside: list[ProcKey] = []  # marked or reported, not (or no longer) below us
        self._marked: list[ProcKey] = []
        self._main_children = b""
        self._children_file: proctree.ChildrenFile | None = None
        self._seen_spawns = -1
        self._scanned_spawns = -1
        self._scanned_upto: int | None = None  # last_pid() at the last scan

    def install(self) -> None:
        self._me = os.getpid()
        self._log = proc_spawns.acquire()
        self._children_file = proctree.ChildrenFile(self._me)

    def uninstall(self) -> None:
        if self._log is not None:
            if self._mp_watched:
                proc_spawns.unwatch_multiprocessing()
                self._mp_watched = False
            proc_spawns.release(self._log)
            self._log = None
        if self._children_file is not None:
            self._children_file.close()
            self._children_file = None

    @property
    def log(self) -> SpawnLog:
        if self._log is None:
            self.install()
        assert self._log is not None
        return self._log

    # --- the clean path --------------------------------------------------------------------
    def snapshot(self) -> ProcSnapshot:
        log = self.log
        if not self._mp_watched:
            self._mp_watched = proc_spawns.watch_multiprocessing(log)
        if os.getpid() != self._me:
            self._adopt(log)
        taken_at = proctree.now()
        spawns = log.spawns
        assert self._children_file is not None
        if spawns != self._seen_spawns or self._main_children != self._children_file.read():
            self._full_read(spawns)
        elif self._outside:
            # Processes outside our tree can end without any sign here: check each (≈ 3 µs).
            alive = [key for key in self._outside if _running(key)]
            if len(alive) != len(self._outside):
                self._outside = alive
                self._keys = self._tree + alive
        return ProcSnapshot(self._keys, taken_at)

    def _full_read(self, spawns: int) -> None:
        me = self._me
        assert self._children_file is not None
        self._main_children = self._children_file.read()
        pids = proctree.child_pids(me)
        for helper in helper_pids():
            if helper in pids:
                # A forkserver's children are the test's multiprocessing.Process objects.
                pids.extend(proctree.child_pids(helper))
        if spawns != self._scanned_spawns:
            # Something was spawned: look for marked descendants, wherever they now hang,
            # among the pids handed out since the last look (plus those found before).
            upto = proctree.last_pid()
            new = proctree.marked_pids(self.log.mark, self._scanned_upto, upto)
            known = [key for key in self._marked if key[0] not in new and _running(key)]
            self._marked = known + _keys_of(new)
            self._scanned_spawns = spawns
            self._scanned_upto = upto
        self._tree = _keys_of(pids)
        seen = set(pids)
        outside: list[ProcKey] = []
        for key in (*self._marked, *self.log.drain_reports().items()):
            if key[0] not in seen and _running(key):
                seen.add(key[0])
                outside.append(key)
        self._outside = outside
        self._keys = self._tree + outside
        self._seen_spawns = spawns

    def _adopt(self, log: SpawnLog) -> None:
        """Tests run in a forked copy of the process that installed us (pytest-forked): the
        copy's children are the ones to watch, and its spawns its own to record."""
        self._me = os.getpid()
        if self._children_file is not None:
            self._children_file.close()
        self._children_file = proctree.ChildrenFile(self._me)
        log.owner_pid = self._me
        log.records.clear()
        log.reported.clear()
        self._marked = []
        self._scanned_upto = None
        self._invalidate()

    def _invalidate(self) -> None:
        """Force the next snapshot to read (and scan) afresh: after cleanup, for instance."""
        self._seen_spawns = self._scanned_spawns = -1

    # --- what changed ----------------------------------------------------------------------
    def new_since(self, before: Mapping[Key, Any], after: Mapping[Key, Any]) -> dict[Key, Any]:
        if after.keys() <= before.keys():
            return {}
        not_before = before.taken_at if isinstance(before, ProcSnapshot) else 0.0
        found: dict[Key, Any] = {}
        helpers = helper_pids()
        old = {_pid_start(key)[0] for key in before}
        for key in after.keys() - before.keys():
            proc = self._classify(_pid_start(key), not_before, old, helpers)
            if proc is None or key in found:
                continue
            if proc.zombie and proc.relation == "child of test" and self._reaped_by_owner(proc):
                continue  # it exited within grace; its Popen/Process collected it
            found[key] = proc
            if not proc.zombie:
                self._add_subtree(proc, found, not_before)
        return found

    def _classify(
        self, key: ProcKey, not_before: float, old: set[int], helpers: set[int]
    ) -> Proc | None:
        """Who ``key`` is to the test, or ``None`` when it is not the test's to answer for."""
        pid, start = key
        stat = proctree.read_stat(pid)
        if pid in helpers or stat is None or stat.start != start:
            return None
        if not proctree.born_after(start, not_before):
            return None
        if stat.ppid == self._me or stat.ppid in helpers:
            return self._proc(stat, "child of test", 1, not_before)
        chain = proctree.ancestry(pid)
        if self._me in chain:
            below = chain[: chain.index(self._me)]
            if old.intersection(below):
                return None  # below a process that predates the test (a fixture's server)
            depth = len(below) + 1
            relation = "grandchild" if depth == 2 else "descendant"
            return self._proc(stat, relation, depth, not_before, _keys_of(reversed(below)))
        if old.intersection(chain):
            return None  # below an orphan that predates the test
        # Marked, born during the test, outside our tree: its parent exited.
        return self._proc(stat, "orphan", len(chain), not_before)

    def _proc(
        self,
        stat: proctree.ProcStat,
        relation: str,
        depth: int,
        not_before: float,
        lineage: list[ProcKey] | None = None,
    ) -> Proc:
        return Proc(
            pid=stat.pid,
            start=stat.start,
            relation=relation,
            depth=depth,
            zombie=stat.state in "ZX",
            stat=stat,
            not_before=not_before,
            mark=self.log.mark,
            me=self._me,
            record=self.log.find(stat.pid, stat.start),
            lineage=lineage or [],
            vouched=self.log.reported.get(stat.pid) == stat.start,
        )

    def _reaped_by_owner(self, proc: Proc) -> bool:
        """Reap an exited child through whoever owns it; False when nobody ever would."""
        record = proc.record
        if record is None:
            return False  # forked from C: nothing in this process will wait for it
        if record.owner_object() is None and record.how != "subprocess.Popen":
            return False  # os.fork / posix_spawn: only the test could have waited
        # A Popen or Process collects it through its own poll(), keeping returncode right. A
        # Popen dropped while its child ran would reap it at the next Popen() (and copes with
        # finding it gone): nobody else is waiting for it.
        return proc_cleanup.reap(proc)

    def _add_subtree(self, parent: Proc, found: dict[Key, Any], not_before: float) -> None:
        """Descendants of a new process, marked or not (a child given ``env=`` has no mark)."""
        if parent.depth >= _MAX_DEPTH or parent.relation == "orphan":
            return  # an orphan's own descendants carry the mark and are classified directly
        for pid in proctree.child_pids(parent.pid):
            stat = proctree.read_stat(pid)
            if stat is None or not proctree.born_after(stat.start, not_before):
                continue
            key = (pid, stat.start)
            if key in found:
                continue
            depth = parent.depth + 1
            relation = "grandchild" if depth == 2 else "descendant"
            lineage = [*parent.lineage, (parent.pid, parent.start)]
            proc = self._proc(stat, relation, depth, not_before, lineage)
            found[key] = proc
            if not proc.zombie:
                self._add_subtree(proc, found, not_before)

    # --- describing ------------------------------------------------------------------------
    def describe(self, key: Key, handle: Any) -> Resource:
        proc = handle if isinstance(handle, Proc) else self._live(key)
        return proc_describe.describe(self.name, key, proc, self.log)

    def _live(self, key: Key) -> Proc:
        """A process from a plain snapshot (the fixture handle's ``snapshot()``)."""
        pid, start = _pid_start(key)
        helpers = helper_pids()
        proc = self._classify((pid, start), 0.0, set(), helpers)
        if proc is not None:
            return proc
        stat = proctree.read_stat(pid) or proctree.ProcStat(pid, "?", "X", 0, 0, 0, start)
        relation = "multiprocessing helper" if pid in helpers else "gone"
        return self._proc(stat, relation, 1, 0.0)

    # --- cleaning up -----------------------------------------------------------------------
    def cleanup(self, resources: Sequence[Resource], timeout: float) -> list[str]:
        procs = [r.handle for r in resources]
        if not all(isinstance(p, Proc) for p in procs):
            return [f"{r.kind} not cleaned up (no process handle)" for r in resources]
        try:
            return proc_cleanup.stop(procs, timeout)
        finally:
            self._invalidate()  # the cached tree no longer holds what was just stopped

    def identify(self, obj: object) -> Key | None:
        pid: int | None = None
        mp = sys.modules.get("multiprocessing.process")
        aio = sys.modules.get("asyncio.subprocess")
        if isinstance(obj, (subprocess.Popen, psutil.Process)) or (
            (mp is not None and isinstance(obj, mp.BaseProcess))
            or (aio is not None and isinstance(obj, aio.Process))
        ):
            pid = getattr(obj, "pid", None)
        if not isinstance(pid, int):
            return None
        stat = proctree.read_stat(pid)
        return (pid, stat.start) if stat is not None else None


def _keys_of(pids: Iterable[int]) -> list[ProcKey]:
    keys: list[ProcKey] = []
    for pid in pids:
        stat = proctree.read_stat(pid)
        if stat is not None:
            keys.append((pid, stat.start))
    return keys


def _running(key: ProcKey) -> bool:
    """True while ``key`` is alive and not a zombie (a dead non-child is its parent's to reap)."""
    stat = proctree.read_stat(key[0])
    return stat is not None and stat.start == key[1] and stat.state not in "ZX"


def _pid_start(key: Key) -> ProcKey:
    pair: ProcKey = key  # type: ignore[assignment]  # this tracker's keys are (pid, start)
    return pair

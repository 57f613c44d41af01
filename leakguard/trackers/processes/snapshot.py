"""What a ``processes`` snapshot holds, and the last full read of it, reused while nothing can
have changed it: re-read only when the spawn counter moved or the main thread's children file
changed, else only the processes outside our tree are checked (≈ 3 µs)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from leakguard.core import compat
from leakguard.trackers.processes import mark as proc_mark
from leakguard.trackers.processes import procfs
from leakguard.trackers.processes import tree as proctree
from leakguard.trackers.processes.cleanup import Proc
from leakguard.trackers.processes.interrupts import GUARD
from leakguard.trackers.processes.ownership import ProcKey
from leakguard.trackers.processes.recording import SpawnLog

ProcHandle = Proc | None
"""``None`` in a snapshot; what `new_since` found out about a new process."""


class ProcSnapshot(dict[ProcKey, ProcHandle]):
    """Identities ``(pid, start)``, when the snapshot was taken (for "born after") and the
    epoch open then (whose processes count as new ones' owner: the test's, a fixture's)."""

    __slots__ = ("epoch", "taken_at")

    def __init__(self, keys: Iterable[ProcKey], taken_at: float, epoch: int) -> None:
        super().__init__(dict.fromkeys(keys))
        self.taken_at = taken_at
        self.epoch = epoch


def helper_pids() -> set[int]:
    """multiprocessing's resource tracker and forkserver: started once per run, on first use,
    by whichever test happens to need them; they belong to the run, not to that test."""
    return {pid for _, pid in compat.multiprocessing_helpers() if pid is not None}


_UNSEEN_FOR = 1.0
"""Seconds a pid handed out but not yet in ``/proc`` is looked for again (a fork takes µs)."""
_UNSEEN_RECENT = 8
"""How many of the newest pids of a scan may be a fork in progress (looked for again)."""


class SnapshotCache:
    """The identities of the last full read, and what tells whether it is still good."""

    def __init__(self) -> None:
        self._keys: list[ProcKey] = []
        self._tree: list[ProcKey] = []  # children (and the forkserver's)
        self._outside: list[ProcKey] = []  # marked or reported, not (or no longer) below us
        self._marked: list[ProcKey] = []
        self._main_children = b""
        self._children_file: proctree.ChildrenFile | None = None
        self._seen_spawns = -1
        self._scanned_spawns = -1
        self.scanned_upto: int | None = None  # last_pid() at the last scan
        # Pids a scan saw handed out but not yet in /proc (a fork in progress), with when:
        # the next scans (grace polls read afresh) look at them again for a short while, or a
        # daemon born then goes unseen.
        self._unseen: dict[int, float] = {}

    def open(self, me: int) -> None:
        self._children_file = proctree.ChildrenFile(me)

    def close(self) -> None:
        if self._children_file is not None:
            self._children_file.close()
            self._children_file = None

    def adopt(self, me: int) -> None:
        """Read the children of ``me`` (a forked copy of the process that read before)."""
        if self._children_file is not None:
            self._children_file.close()
        self._children_file = proctree.ChildrenFile(me)
        self._marked = []
        self.scanned_upto = None
        self.invalidate()

    def invalidate(self) -> None:
        """Force the next read (and scan) afresh: after cleanup, for instance."""
        self._seen_spawns = self._scanned_spawns = -1

    def read(self, me: int, log: SpawnLog) -> list[ProcKey]:
        """The identities a snapshot shows now, read afresh only if they may have changed."""
        spawns = log.spawns
        assert self._children_file is not None
        if spawns != self._seen_spawns or self._main_children != self._children_file.read():
            if spawns != self._seen_spawns:
                GUARD.spawned()  # a spawn on another thread could not arm it there
            self._full_read(me, log, spawns)
        elif self._outside:
            # Processes outside our tree can end without any sign here: check each (≈ 3 µs).
            alive = [key for key in self._outside if _running(key)]
            if len(alive) != len(self._outside):
                self._outside = alive
                self._keys = self._tree + alive
        return self._keys

    def _full_read(self, me: int, log: SpawnLog, spawns: int) -> None:
        assert self._children_file is not None
        self._main_children = self._children_file.read()
        pids = proctree.child_pids(me)
        for helper in helper_pids():
            if helper in pids:
                # A forkserver's children are the test's multiprocessing.Process objects.
                pids.extend(proctree.child_pids(helper))
        if spawns != self._scanned_spawns or self._unseen:
            # Something was spawned: look for marked descendants, wherever they now hang,
            # among the pids handed out since the last look (plus those found before).
            upto = proc_mark.last_pid()
            now = time.monotonic()
            retry = [pid for pid, since in self._unseen.items() if now - since < _UNSEEN_FOR]
            unseen: list[int] = []
            new = proc_mark.marked_pids(
                log.mark, self.scanned_upto, upto, retry=retry, unseen=unseen
            )
            # Only the newest pids can be a fork still in progress; an older unreadable one is
            # a thread's or an exited process's and never shows (threads take pids too).
            recent = (upto or 0) - _UNSEEN_RECENT
            self._unseen = {pid: self._unseen.get(pid, now) for pid in unseen if pid > recent}
            known = [key for key in self._marked if key[0] not in new and _running(key)]
            self._marked = known + _keys_of(new)
            self._scanned_spawns = spawns
            self.scanned_upto = upto
        self._tree = _keys_of(pids)
        seen = set(pids)
        outside: list[ProcKey] = []
        reported = ((pid, start) for pid, (start, _epoch) in log.pipe.drain().items())
        for key in (*self._marked, *reported):
            if key[0] not in seen and _running(key):
                seen.add(key[0])
                outside.append(key)
        self._outside = outside
        self._keys = self._tree + outside
        self._seen_spawns = spawns


def _keys_of(pids: Iterable[int]) -> list[ProcKey]:
    keys: list[ProcKey] = []
    for pid in pids:
        stat = procfs.read_stat(pid)
        if stat is not None:
            keys.append((pid, stat.start))
    return keys


def _running(key: ProcKey) -> bool:
    """True while ``key`` is alive and not a zombie (a dead non-child is its parent's to reap)."""
    stat = procfs.read_stat(key[0])
    return stat is not None and stat.start == key[1] and stat.state not in "ZX"

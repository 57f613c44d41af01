"""Whose a new process is: the test's only if the test's lineage spawned it, or if it descends,
through processes that are themselves the test's, from such a spawn.

A process the test did not spawn (a session fixture's thread running ``subprocess.run``, a
fixture's server starting a worker later) is that older owner's, however new it is: it is
neither reported against the test nor signalled.
"""

from __future__ import annotations

import threading

from leakguard.core.lineage import LINEAGE, NO_EPOCH, thread_epoch
from leakguard.trackers.processes import mark as proc_mark
from leakguard.trackers.processes import procfs
from leakguard.trackers.processes import tree as proctree
from leakguard.trackers.processes.cleanup import Proc
from leakguard.trackers.processes.recording import SpawnLog

ProcKey = tuple[int, float]
MAX_DEPTH = 32


class Judge:
    """One pass over what is new since a snapshot taken at ``not_before`` under ``epoch``.

    A plain class: a dataclass costs 0.25-0.5 ms to define (Python 3.10-3.12), at start-up.
    """

    def __init__(
        self,
        me: int,
        epoch: int,
        not_before: float,
        old: set[int],
        helpers: set[int],
        log: SpawnLog,
    ) -> None:
        self.me = me
        self.epoch = epoch
        self.not_before = not_before
        self.old = old  # pids in the snapshot: older than the test, with whatever they start
        self.helpers = helpers  # multiprocessing's resource tracker and forkserver
        self.log = log
        self._children: dict[int, bool] = {}

    # --- verdicts ----------------------------------------------------------------------------
    def spawned_by_test(self, stat: procfs.ProcStat) -> bool:
        """A direct child: the epoch in its spawn record, else that of the thread that forked it."""
        verdict = self._children.get(stat.pid)
        if verdict is None:
            record = self.log.find(stat.pid, stat.start)
            if record is not None:
                verdict = LINEAGE.belongs(record.epoch, self.epoch)
            else:
                verdict = self._forked_by_test(stat.pid)
            self._children[stat.pid] = verdict
        return verdict

    def _forked_by_test(self, pid: int) -> bool:
        """No spawn record (a fork from C): ask which of our threads forked it."""
        tid = proctree.forking_thread(self.me, pid)
        thread = next((t for t in threading.enumerate() if t.native_id == tid), None)
        if thread is None:
            # A thread Python does not know (or one that has ended): the parent chain is the
            # only proof there is, and it holds.
            return True
        if thread.ident == threading.get_ident():
            return LINEAGE.belongs(LINEAGE.creator(), self.epoch)  # the checking (test's) thread
        return LINEAGE.belongs(thread_epoch(thread), self.epoch)

    def outside_proof(self, stat: procfs.ProcStat) -> str | None:
        """For a process outside our tree: ``"pipe"`` or ``"tag"`` when a spawn of the test is
        on record for it, ``""`` when only the run's mark says it is ours, ``None`` when the
        record names another owner (a fixture, an earlier test)."""
        reported = self.log.pipe.reported.get(stat.pid)
        if reported is not None and reported[0] == stat.start:
            return "pipe" if LINEAGE.belongs(reported[1], self.epoch) else None
        tag = proc_mark.mark_epoch(stat.pid, self.log.mark)
        if tag is None or tag == NO_EPOCH:
            return ""
        return "tag" if LINEAGE.belongs(tag, self.epoch) else None

    # --- classification ----------------------------------------------------------------------
    def classify(self, key: ProcKey) -> Proc | None:
        """``key`` as a `Proc` when it is the test's, else ``None``."""
        pid, start = key
        stat = procfs.read_stat(pid)
        if pid in self.helpers or stat is None or stat.start != start:
            return None
        if not procfs.born_after(start, self.not_before):
            return None
        if stat.ppid == self.me or stat.ppid in self.helpers:
            if not self.spawned_by_test(stat):
                return None
            return self.proc(stat, "child of test", 1, "tree")
        chain = proctree.ancestry(pid)
        if self.me in chain:
            below = chain[: chain.index(self.me)]
            lineage = self._lineage(below)
            if lineage is None:
                return None
            depth = len(below) + 1
            relation = "grandchild" if depth == 2 else "descendant"
            return self.proc(stat, relation, depth, "tree", lineage)
        if self.old.intersection(chain):
            return None  # below an orphan that predates the test
        # Outside our tree, born during the test: its parent exited.
        proof = self.outside_proof(stat)
        if proof is None:
            return None
        return self.proc(stat, "orphan", len(chain), proof)

    def _lineage(self, below: list[int]) -> list[ProcKey] | None:
        """The test's processes from its child down to ``below[0]``, or ``None`` when any of
        them is not the test's (older than the test, or not spawned by its lineage)."""
        if self.old.intersection(below):
            return None  # below a process that predates the test (a fixture's server)
        lineage: list[ProcKey] = []
        for pid in reversed(below):
            stat = procfs.read_stat(pid)
            if stat is None or not procfs.born_after(stat.start, self.not_before):
                return None
            if not lineage and not self.spawned_by_test(stat):
                return None  # its top is a child some other owner spawned
            lineage.append((pid, stat.start))
        return lineage

    def add_subtree(self, parent: Proc, found: dict[ProcKey, Proc | None]) -> None:
        """Descendants of one of the test's processes, marked or not (``env=`` drops the mark)."""
        if parent.depth >= MAX_DEPTH or parent.relation == "orphan":
            return  # an orphan's own descendants carry the mark and are classified directly
        for pid in proctree.child_pids(parent.pid):
            stat = procfs.read_stat(pid)
            if stat is None or not procfs.born_after(stat.start, self.not_before):
                continue
            key = (pid, stat.start)
            if key in found:
                continue
            depth = parent.depth + 1
            relation = "grandchild" if depth == 2 else "descendant"
            lineage = [*parent.lineage, (parent.pid, parent.start)]
            proc = self.proc(stat, relation, depth, "tree", lineage)
            found[key] = proc
            if not proc.zombie:
                self.add_subtree(proc, found)

    def proc(
        self,
        stat: procfs.ProcStat,
        relation: str,
        depth: int,
        proof: str,
        lineage: list[ProcKey] | None = None,
    ) -> Proc:
        return Proc(
            pid=stat.pid,
            start=stat.start,
            relation=relation,
            depth=depth,
            zombie=stat.state in "ZX",
            stat=stat,
            not_before=self.not_before,
            mark=self.log.mark,
            me=self.me,
            record=self.log.find(stat.pid, stat.start),
            lineage=lineage or [],
            epoch=self.epoch,
            proof=proof,
        )

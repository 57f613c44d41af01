"""The engine: snapshot the active trackers, settle new resources through the grace period,
describe what stayed, and clean it up. Knows nothing of pytest."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from leakguard.core import leakpath
from leakguard.core.faults import InternalProblem
from leakguard.core.lineage import LINEAGE
from leakguard.core.roster import Roster
from leakguard.core.stats import Stats, timing
from leakguard.core.tracker import AnyTracker, Conclusion, Key, Phase, PhaseName

if TYPE_CHECKING:
    from leakguard.core.garbage import CollectionOrder
    from leakguard.core.keepers import Keepers
    from leakguard.core.polling import Candidates, Poll
    from leakguard.core.registry import TrackerRegistry
    from leakguard.core.settings import IgnoreRule, Settings

Snapshot = dict[str, Mapping[Key, Any]]
_NO_KEYS: frozenset[Key] = frozenset()


QUICK_WAIT = 0.05
"""Seconds of grace waited before searching what keeps the rest (see `Engine._settle`)."""


class Engine:
    """Checks for one run (or one ``leakguard.check`` block): the one door to its trackers
    (`leakguard.core.roster`) and to the leak path's steps (`polling`, `keepers`, `garbage`,
    `cleanup` in `leakguard.core`), which are imported when something is first found
    (`leakguard.core.leakpath`)."""

    def __init__(
        self,
        registry: TrackerRegistry,
        on_problem: Callable[[InternalProblem], None] | None = None,
    ) -> None:
        self._roster = self.roster = Roster(registry, on_problem)
        # The roster's own dict, never replaced: the clean path reads it without a call.
        self._trackers = self._roster.instances
        self._keepers: Keepers | None = None  # made on the first leak path
        self._collection_order: CollectionOrder | None = None  # the same
        self._lineage_installed = False
        self.stats: Stats | None = None
        self.root: str | None = None
        """The rootdir: what lies below it (outside installed packages) is the user's code."""
        self.changed: dict[str, Mapping[Key, Any]] = {}
        """Per tracker that showed new keys at the last `find_leaks`, what it showed then:
        where to look for what an earlier test's lineage made (`leakguard.core.crosstest`)."""
        # timeline (issue 15): sees each snapshot of the end-of-test check, to count it.
        self.observe: Callable[[str, Mapping[Key, Any]], None] | None = None
        self.seen: Snapshot = {}
        """What every tracker showed at the last `find_leaks` (a new dict each time)."""

    @property
    def problems(self) -> dict[str, InternalProblem]:
        return self._roster.problems

    @property
    def disabled(self) -> set[str]:
        return self._roster.disabled

    # --- lifecycle -------------------------------------------------------------------------
    def activate(self, names: Iterable[str]) -> None:
        """Create and install trackers now, so they record origins before the first test."""
        if not self._lineage_installed:
            # Which thread started which: every tracker's notion of "the test's" rests on it.
            LINEAGE.install()
            self._lineage_installed = True
        for name in names:
            self.tracker(name)

    def tracker(self, name: str) -> AnyTracker | None:
        known = name in self._trackers
        tracker = self._roster.tracker(name)
        if tracker is not None and not known:
            try:  # its leak path's code, read now: running it later opens nothing
                leakpath.prepare()
            except Exception as exc:  # then the leak path imports as usual
                self._roster.report_fault(name, "reading the leak path's code", exc)
        return tracker

    def close(self) -> None:
        self._roster.close()
        if self._lineage_installed:
            LINEAGE.uninstall()
            self._lineage_installed = False

    # --- the clean path --------------------------------------------------------------------
    def snapshot(
        self, names: Iterable[str], phase: PhaseName = "live", grace: float = 1.0
    ) -> Snapshot:
        """Identities of every active tracker's resources (cheap: no descriptions).

        ``grace``: the checked test's grace period, handed to the trackers in the `Phase`.
        """
        snap: Snapshot = {}
        moment = Phase(phase, grace)
        faults = self._roster.snapshot_faults
        for name in names:
            tracker = self._trackers.get(name) or self.tracker(name)
            if tracker is None:
                continue
            try:
                snap[name] = tracker.snapshot(moment)
            except Exception as exc:
                self._roster.snapshot_fault(name, exc)
            else:
                if faults:
                    faults.pop(name, None)
        return snap

    def find_leaks(
        self,
        before: Snapshot,
        settings: Settings,
        *,
        exclude: Mapping[str, Collection[Key]] | None = None,
        extra_rules: Sequence[IgnoreRule] = (),
        grace: float | None = None,
    ) -> list[Conclusion]:
        """Resources new since ``before`` that are still there when the grace period ends.

        Only trackers that still show something new are polled again; descriptions (and
        ignore matching) happen once per new resource.
        """
        # The clean path: one snapshot per tracker and a key-subset test. Nothing new means
        # nothing to describe and nothing to wait for.
        pending: list[str] = []
        moment = Phase("after", settings.grace if grace is None else grace)
        self.changed = {}
        self.seen = {}
        # No automatic collection until the leak path has looked (`_settle`): one set off by
        # the snapshots' own allocations would free the test's garbage (a socket in a cycle)
        # unseen, and what its finalizer said would be handed to the next test as its error.
        collecting = gc.isenabled()
        gc.disable()
        try:
            for name, snap in before.items():
                tracker = self._trackers.get(name)
                if tracker is None:
                    continue
                try:
                    now = tracker.snapshot(moment)
                except Exception as exc:
                    self._roster.snapshot_fault(name, exc)
                    continue
                self.seen[name] = now
                if self.observe is not None:  # timeline (issue 15)
                    self.observe(name, now)
                # `is`: a tracker may hand back the very mapping it gave before when nothing
                # changed (the descriptor scan does), and comparing 2,000 keys costs ≈ 50 µs.
                if now is not snap and not now.keys() <= snap.keys():
                    pending.append(name)
                    self.changed[name] = now
            if not pending:
                return []
            exclude = exclude or {}

            def candidates(
                name: str, tracker: AnyTracker, now: Mapping[Key, Any]
            ) -> Mapping[Key, Any]:
                new = tracker.new_since(before[name], now)
                skip = exclude.get(name, _NO_KEYS)
                return {k: h for k, h in new.items() if k not in skip} if skip and new else new

            rules = (*settings.ignore, *extra_rules)
            stats = self.stats
            if stats is not None:
                start, named = time.perf_counter(), sum(stats.seconds.values())
            leaks = self._settle(
                pending, candidates, settings, rules, grace, LINEAGE.current, collecting
            )
            if stats is not None:  # what the named phases inside missed: the polls themselves
                inside = sum(stats.seconds.values()) - named
                stats.seconds["polls"] += time.perf_counter() - start - inside
        finally:
            if collecting:
                gc.enable()
        order = {name: i for i, name in enumerate(settings.trackers)}
        leaks.sort(key=lambda r: (order.get(r.tracker, len(order)), r.description))
        return leaks

    def find_survivors(
        self,
        owned: Mapping[str, Mapping[Key, Any]],
        settings: Settings,
        *,
        grace: float | None = None,
    ) -> list[Conclusion]:
        """Which of ``owned`` (e.g. what a fixture created) still exist once the grace ends."""
        pending = [name for name, keys in owned.items() if keys and name not in self.disabled]

        def candidates(name: str, tracker: AnyTracker, now: Mapping[Key, Any]) -> Mapping[Key, Any]:
            return {k: h for k, h in owned[name].items() if k in now}

        return self._settle(pending, candidates, settings, settings.ignore, grace, None)

    def _settle(
        self,
        pending: list[str],
        candidates: Candidates,
        settings: Settings,
        rules: Sequence[IgnoreRule],
        grace: float | None,
        epoch: int | None,
        collecting: bool | None = None,
    ) -> list[Conclusion]:
        """Poll the ``pending`` trackers through the grace period; describe each candidate once
        (and once more if it outlived a long wait: a process may have exec'd meanwhile); then
        sort out what only the garbage collector frees.

        Only trackers that still show a candidate are polled again. The grace period is waited
        only if something could still end by itself: a candidate of a kind that can (a thread,
        a task, a process), or a live thread of the test (``epoch``) that could still close a
        descriptor. Otherwise the verdict comes at once.
        """
        # Until the first poll has looked, no automatic collection (set off by loading the leak
        # path's code, or by describing) may free the test's garbage unseen; later ones are
        # sorted out against what that poll found (`sort_out_garbage`).
        with leakpath.CollectorPause(collecting) as collector:
            leakpath.load()
            from leakguard.core.garbage import finalizers_heard
            from leakguard.core.polling import Poll

            self._keepers_now().new_check()
            wait = settings.grace if grace is None else grace
            poll = Poll(self._roster, pending, candidates, settings, rules, wait, self.stats)
            # What finalizers say while the leak path runs (an automatic collection its own
            # allocations set off frees the test's garbage): this test's, never the next test's.
            with finalizers_heard() as said:
                found = poll()
                collector.resume()
                if not found:
                    return found
                return self._conclude_found(found, poll, settings, wait, epoch, said)

    def _conclude_found(
        self,
        found: list[Conclusion],
        poll: Poll,
        settings: Settings,
        wait: float,
        epoch: int | None,
        said: list[str],
    ) -> list[Conclusion]:
        from leakguard.core.garbage import CollectionOrder, freed_while_waiting, sort_out_garbage
        from leakguard.core.grace import settle
        from leakguard.core.polling import waiting_helps

        # What a tracker proves a library's cache (trio's idle workers) is decided now: waiting
        # for it cannot help, and searching its holders would only find that library.
        self._keepers_now().classify_known(found)
        first = found
        if not _no_leak(found) and (
            epoch is None or waiting_helps(found, self._trackers, epoch, wait)
        ):
            stats = self.stats
            start = time.perf_counter()
            nested_before = stats.seconds["describe"] + stats.seconds["owners"] if stats else 0.0
            # A short wait first: most of what ends by itself ends within a few ms.
            found = settle(poll, _no_leak, min(wait, QUICK_WAIT), first=found)
            if found and wait > QUICK_WAIT:
                # Waiting longer is only worth it for what is not a library's cache (an idle
                # worker of trio's thread cache waits ~10 s for reuse: the grace cannot help).
                self.classify(found, self.root)
                # The grace runs from the test's end, the search included: what never ends
                # costs the grace, not the grace plus the search (a heap walk, 0.3 s on anyio's
                # suite). With no time left, one more look after the search.
                left = wait - (time.perf_counter() - start)
                found = settle(poll, _no_leak, left, first=found if left > 0 else None)
                poll.describe_again(found)
            if stats is not None:  # describing and searching, timed apart, are not waiting
                nested = stats.seconds["describe"] + stats.seconds["owners"] - nested_before
                stats.seconds["grace"] += time.perf_counter() - start - nested
        freed = (
            freed_while_waiting(first, found, self._trackers, said) if found is not first else []
        )
        if not found:
            return freed
        stats = self.stats
        start = time.perf_counter()
        owners_before = stats.seconds["owners"] if stats is not None else 0.0
        if self._collection_order is None:
            self._collection_order = CollectionOrder()
        try:
            return freed + sort_out_garbage(
                found,
                poll,
                self._trackers,
                said,
                lambda left: self.classify(left, self.root),
                self._collection_order,
            )
        finally:
            if stats is not None:  # the holder search inside is timed apart
                nested = stats.seconds["owners"] - owners_before
                stats.seconds["garbage"] += time.perf_counter() - start - nested

    def still_present(self, found: Sequence[Conclusion]) -> list[Conclusion]:
        """Those of ``found`` that a fresh snapshot still shows (what cleanup left behind)."""
        snaps: dict[str, Mapping[Key, Any]] = {}
        left: list[Conclusion] = []
        for conclusion in found:
            name = conclusion.tracker
            if name not in snaps:
                snaps.update(self.snapshot([name], "cleanup"))
            if conclusion.key in snaps.get(name, {}):
                left.append(conclusion)
        return left

    # --- after a leak ----------------------------------------------------------------------
    def classify(self, leaks: Sequence[Conclusion], root: str | None) -> None:
        """Which leaks a library keeps in its module state (its process-wide cache) and which
        the application's does: one bounded holder search for all of them."""
        self._keepers_now().classify(leaks, root, self.stats)

    def _keepers_now(self) -> Keepers:
        if self._keepers is None:
            leakpath.load()
            from leakguard.core.keepers import Keepers

            self._keepers = Keepers(self._roster)
        return self._keepers

    def cleanup(self, leaks: Sequence[Conclusion], timeout: float) -> None:
        """Let each tracker remove its leaks; record one outcome per resource."""
        leakpath.load()
        from leakguard.core.cleanup import clean_up

        with timing(self.stats, "cleanup"):
            clean_up(leaks, timeout, self._roster)

    def identify(self, obj: object, names: Iterable[str]) -> tuple[str, Key] | None:
        """Which tracker knows ``obj`` and by which key (for ``leakguard.ignore(obj)``)."""
        leakpath.load()  # a tracker's `identify` may use what describes its resources
        for name in names:
            tracker = self._trackers.get(name)
            if tracker is None:
                continue
            try:
                key = tracker.identify(obj)
            except Exception:
                key = None
            if key is not None:
                return name, key
        return None

    def report_fault(
        self, name: str, phase: str, exc: BaseException, disabled: bool = False
    ) -> None:
        self._roster.report_fault(name, phase, exc, disabled)


def _no_leak(found: Sequence[Conclusion]) -> bool:
    return all(r.category != "leak" for r in found)

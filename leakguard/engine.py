"""The engine: snapshot the active trackers, settle new resources through the grace period,
describe what stayed, and clean it up. Knows nothing of pytest."""

from __future__ import annotations

import contextlib
import gc
import threading
import time
import traceback
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from leakguard.grace import settle
from leakguard.holders import find_holders
from leakguard.lineage import LINEAGE, thread_epoch
from leakguard.registry import TrackerRegistry
from leakguard.settings import IgnoreRule, Settings
from leakguard.stats import Stats, timing
from leakguard.tracker import Key, Resource, Tracker

Snapshot = dict[str, Mapping[Key, Any]]
_NO_KEYS: frozenset[Key] = frozenset()


QUICK_WAIT = 0.05
"""Seconds of grace waited before searching what keeps the rest (see `Engine._settle`)."""

SNAPSHOT_FAULTS_TO_DISABLE = 3
"""Consecutive failed snapshots before a tracker is switched off: one bad moment (a weak
dictionary changing size under a gc callback) must not blind it for the rest of the run."""


@dataclass(frozen=True)
class InternalProblem:
    """A fault inside leakguard: shown in the summary whatever the warning filters."""

    tracker: str
    phase: str
    error: str
    during: str = ""
    """The test (or fixture, or block) being checked, if any."""
    disabled: bool = False
    traceback: str = ""

    @classmethod
    def of(cls, exc: BaseException, phase: str, tracker: str = "", **extra: Any) -> InternalProblem:
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(tracker, phase, _one_line(exc), traceback=trace, **extra)

    def message(self) -> str:
        where = f" during {self.during}" if self.during else ""
        if not self.tracker:
            return f"leakguard internal problem: {self.phase}{where}: {self.error}"
        tail = (
            f"; disabled: blind from {self.during or 'here'} on"
            if self.disabled
            else "; it keeps working"
        )
        return (
            f"leakguard internal problem: tracker {self.tracker!r}, {self.phase}{where}: "
            f"{self.error}{tail}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message(),
            "tracker": self.tracker,
            "phase": self.phase,
            "error": self.error,
            "during": self.during,
            "disabled": self.disabled,
            "traceback": self.traceback,
        }


class Engine:
    """Owns the tracker instances of one run (or one ``leakguard.check`` block)."""

    def __init__(
        self,
        registry: TrackerRegistry,
        on_problem: Callable[[InternalProblem], None] | None = None,
    ) -> None:
        self._registry = registry
        self._on_problem = on_problem
        self._trackers: dict[str, Tracker] = {}
        self.problems: dict[str, InternalProblem] = {}
        self.disabled: set[str] = set()
        self._lineage_installed = False
        self._snapshot_faults: dict[str, int] = {}
        self.during = ""
        """What is being checked now (a test id), named in internal problems."""
        self.stats: Stats | None = None
        self.root: str | None = None
        """The rootdir: what lies below it (outside installed packages) is the user's code."""
        # id() of the resources whose holders were searched already during this check (a search
        # is one heap walk per level); emptied when a check starts, while they are all alive.
        self._searched: set[int] = set()
        self.changed: dict[str, Mapping[Key, Any]] = {}
        """Per tracker that showed new keys at the last `find_leaks`, what it showed then:
        where to look for what an earlier test's lineage made (`leakguard.crosstest`)."""
        self.seen: Snapshot = {}
        """What every tracker showed at the last `find_leaks` (a new dict each time)."""

    # --- lifecycle -------------------------------------------------------------------------
    def activate(self, names: Iterable[str]) -> None:
        """Create and install trackers now, so they record origins before the first test."""
        if not self._lineage_installed:
            # Which thread started which: every tracker's notion of "the test's" rests on it.
            LINEAGE.install()
            self._lineage_installed = True
        for name in names:
            self.tracker(name)

    def tracker(self, name: str) -> Tracker | None:
        if name in self.disabled:
            return None
        tracker = self._trackers.get(name)
        if tracker is None:
            try:
                tracker = self._registry.create(name)
                tracker.install()
            except Exception as exc:
                self._fail(name, "install", exc)
                return None
            self._trackers[name] = tracker
        return tracker

    def close(self) -> None:
        for name, tracker in list(self._trackers.items()):
            try:
                tracker.uninstall()
            except Exception as exc:
                self._fail(name, "uninstall", exc)
        self._trackers.clear()
        if self._lineage_installed:
            LINEAGE.uninstall()
            self._lineage_installed = False

    # --- the clean path --------------------------------------------------------------------
    def snapshot(self, names: Iterable[str], grace: float | None = None) -> Snapshot:
        """Identities of every active tracker's resources (cheap: no descriptions).

        ``grace``, at the start of a checked test or block, is handed to each tracker.
        """
        snap: Snapshot = {}
        for name in names:
            tracker = self._trackers.get(name) or self.tracker(name)
            if tracker is None:
                continue
            if grace is not None:
                tracker.grace = grace
            try:
                snap[name] = tracker.snapshot()
            except Exception as exc:
                self._snapshot_fault(name, exc)
            else:
                if self._snapshot_faults:
                    self._snapshot_faults.pop(name, None)
        return snap

    def find_leaks(
        self,
        before: Snapshot,
        settings: Settings,
        *,
        exclude: Mapping[str, Collection[Key]] | None = None,
        extra_rules: Sequence[IgnoreRule] = (),
        grace: float | None = None,
    ) -> list[Resource]:
        """Resources new since ``before`` that are still there when the grace period ends.

        Only trackers that still show something new are polled again; descriptions (and
        ignore matching) happen once per new resource.
        """
        # The clean path: one snapshot per tracker and a key-subset test. Nothing new means
        # nothing to describe and nothing to wait for.
        pending: list[str] = []
        self.changed = {}
        self.seen = {}
        for name, snap in before.items():
            tracker = self._trackers.get(name)
            if tracker is None:
                continue
            try:
                now = tracker.snapshot()
            except Exception as exc:
                self._snapshot_fault(name, exc)
                continue
            self.seen[name] = now
            # `is`: a tracker may hand back the very mapping it gave before when nothing
            # changed (the descriptor scan does), and comparing 2,000 keys costs ≈ 50 µs.
            if now is not snap and not now.keys() <= snap.keys():
                pending.append(name)
                self.changed[name] = now
        if not pending:
            return []
        exclude = exclude or {}

        def candidates(name: str, tracker: Tracker, now: Mapping[Key, Any]) -> Mapping[Key, Any]:
            new = tracker.new_since(before[name], now)
            skip = exclude.get(name, _NO_KEYS)
            return {k: h for k, h in new.items() if k not in skip} if skip and new else new

        rules = (*settings.ignore, *extra_rules)
        leaks = self._settle(pending, candidates, settings, rules, grace, LINEAGE.current)
        order = {name: i for i, name in enumerate(settings.trackers)}
        leaks.sort(key=lambda r: (order.get(r.tracker, len(order)), r.description))
        return leaks

    def find_survivors(
        self,
        owned: Mapping[str, Mapping[Key, Any]],
        settings: Settings,
        *,
        grace: float | None = None,
    ) -> list[Resource]:
        """Which of ``owned`` (e.g. what a fixture created) still exist once the grace ends."""
        pending = [name for name, keys in owned.items() if keys and name not in self.disabled]

        def candidates(name: str, tracker: Tracker, now: Mapping[Key, Any]) -> Mapping[Key, Any]:
            return {k: h for k, h in owned[name].items() if k in now}

        return self._settle(pending, candidates, settings, settings.ignore, grace, None)

    def _settle(
        self,
        pending: list[str],
        candidates: Callable[[str, Tracker, Mapping[Key, Any]], Mapping[Key, Any]],
        settings: Settings,
        rules: Sequence[IgnoreRule],
        grace: float | None,
        epoch: int | None,
    ) -> list[Resource]:
        """Poll the ``pending`` trackers through the grace period; describe each candidate once;
        then sort out what only the garbage collector frees.

        Only trackers that still show a candidate are polled again. The grace period is waited
        only if something could still end by itself: a candidate of a kind that can (a thread,
        a task, a process), or a live thread of the test (``epoch``) that could still close a
        descriptor. Otherwise the verdict comes at once.
        """
        described: dict[tuple[str, Key], Resource | None] = {}
        self._searched.clear()

        def poll() -> list[Resource]:
            found: list[Resource] = []
            still: list[str] = []
            for name in pending:
                tracker = self._trackers.get(name)
                if tracker is None:
                    continue
                try:
                    now = tracker.snapshot()
                except Exception as exc:
                    self._snapshot_fault(name, exc)
                    continue
                try:
                    items = candidates(name, tracker, now)
                except Exception as exc:
                    self.report_fault(name, "new_since", exc)
                    continue
                count = len(found)
                for key, handle in items.items():
                    if (name, key) not in described:
                        described[name, key] = self._describe(tracker, key, handle, settings, rules)
                    resource = described[name, key]
                    if resource is not None:
                        found.append(resource)
                if len(found) > count:
                    still.append(name)
            pending[:] = still
            return found

        found = poll()
        if not found:
            return found
        if epoch is None or self._waiting_helps(found, epoch):
            wait = settings.grace if grace is None else grace
            stats = self.stats
            start = time.perf_counter()
            nested_before = stats.seconds["describe"] + stats.seconds["owners"] if stats else 0.0
            # A short wait first: most of what ends by itself ends within a few ms.
            found = settle(poll, lambda found: not found, min(wait, QUICK_WAIT), first=found)
            if found and wait > QUICK_WAIT:
                # Waiting longer is only worth it for what is not a library's cache (an idle
                # worker of trio's thread cache waits ~10 s for reuse: the grace cannot help).
                self.classify(found, self.root)
                found = settle(poll, _no_leak, wait - QUICK_WAIT, first=found)
            if stats is not None:  # describing and searching, timed apart, are not waiting
                nested = stats.seconds["describe"] + stats.seconds["owners"] - nested_before
                stats.seconds["grace"] += time.perf_counter() - start - nested
        if not found:
            return found
        with timing(self.stats, "garbage"):
            return self._sort_out_garbage(found, poll)

    def _waiting_helps(self, found: Sequence[Resource], epoch: int) -> bool:
        for resource in found:
            tracker = self._trackers.get(resource.tracker)
            if tracker is None or tracker.ends_by_itself:
                return True
        return any(LINEAGE.belongs(thread_epoch(thread), epoch) for thread in threading.enumerate())

    def _sort_out_garbage(
        self, found: list[Resource], poll: Callable[[], list[Resource]]
    ) -> list[Resource]:
        """Collect garbage once (young generations first, all of them only if that was not
        enough): a descriptor that goes away then was freed only by the collector, an
        unclosed object in a reference cycle. Never on the clean path."""
        passive = {
            (r.tracker, r.key)
            for r in found
            if not getattr(self._trackers.get(r.tracker), "ends_by_itself", True)
        }
        if not passive:
            return found
        gc.collect(1)
        after = poll()
        if passive <= {(r.tracker, r.key) for r in after}:
            gc.collect()
            after = poll()
        left = {(r.tracker, r.key) for r in after}
        for resource in found:
            if (resource.tracker, resource.key) in passive - left:
                resource.category = "garbage"
                after.append(resource)
        return after

    def still_present(self, resources: Sequence[Resource]) -> list[Resource]:
        """Those of ``resources`` that a fresh snapshot still shows (what cleanup left behind)."""
        snaps: dict[str, Mapping[Key, Any]] = {}
        left: list[Resource] = []
        for resource in resources:
            name = resource.tracker
            if name not in snaps:
                snaps.update(self.snapshot([name]))
            if resource.key in snaps.get(name, {}):
                left.append(resource)
        return left

    def _describe(
        self,
        tracker: Tracker,
        key: Key,
        handle: Any,
        settings: Settings,
        rules: Sequence[IgnoreRule],
    ) -> Resource | None:
        try:
            with timing(self.stats, "describe"):
                resource = tracker.describe(key, handle)
        except Exception as exc:
            self.report_fault(tracker.name, "describe", exc)
            resource = Resource(tracker.name, key, tracker.name, repr(key), "(description failed)")
        else:
            try:
                if tracker.builtin_ignore(resource) is not None:
                    return None
            except Exception as exc:  # not ignored, then: reported as what it is
                self.report_fault(tracker.name, "builtin_ignore", exc)
        if not settings.traceback:
            resource.origin = None
        for rule in rules:
            if rule.matches(resource):
                return None
        return resource

    # --- after a leak ----------------------------------------------------------------------
    def classify(self, leaks: Sequence[Resource], root: str | None) -> None:
        """Which leaks a library keeps in its module state: those are its process-wide cache.

        One bounded holder search for all of them, on the leak path only.
        """
        searched: list[Resource] = []
        objects: list[object] = []
        for resource in leaks:
            tracker = self._trackers.get(resource.tracker)
            if resource.category != "leak" or tracker is None or id(resource) in self._searched:
                continue
            self._searched.add(id(resource))
            try:
                obj = tracker.owner_object(resource)
            except Exception as exc:
                self.report_fault(resource.tracker, "owner_object", exc)
                continue
            if obj is not None:
                searched.append(resource)
                objects.append(obj)
        if not objects:
            return
        with timing(self.stats, "owners"):
            holders = find_holders(objects, root)
        for resource, holder in zip(searched, holders, strict=True):
            if holder is not None and holder.library:
                resource.category = "cache"
                resource.holder = holder.name

    def cleanup(self, leaks: Sequence[Resource], timeout: float) -> None:
        """Let each tracker remove its leaks; record one outcome per resource."""
        with timing(self.stats, "cleanup"):
            self._cleanup(leaks, timeout)

    def _cleanup(self, leaks: Sequence[Resource], timeout: float) -> None:
        by_tracker: dict[str, list[Resource]] = {}
        for resource in leaks:
            by_tracker.setdefault(resource.tracker, []).append(resource)
        for name, group in by_tracker.items():
            tracker = self._trackers.get(name)
            if tracker is None:
                outcomes = [f"{r.kind} not cleaned up (tracker disabled)" for r in group]
            else:
                try:
                    outcomes = list(tracker.cleanup(group, timeout))
                except Exception as exc:
                    # Against these resources, not the tracker: it keeps checking later tests.
                    self.report_fault(name, "cleanup", exc)
                    why = _one_line(exc)
                    outcomes = [f"{r.kind} {r.label}: cleanup failed ({why})" for r in group]
            for resource, outcome in zip(group, outcomes, strict=False):
                resource.cleanup = outcome

    def identify(self, obj: object, names: Iterable[str]) -> tuple[str, Key] | None:
        """Which tracker knows ``obj`` and by which key (for ``leakguard.ignore(obj)``)."""
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

    # --- faults ----------------------------------------------------------------------------
    def _snapshot_fault(self, name: str, exc: BaseException) -> None:
        count = self._snapshot_faults[name] = self._snapshot_faults.get(name, 0) + 1
        if count >= SNAPSHOT_FAULTS_TO_DISABLE:
            self._fail(name, "snapshot", exc)
        else:
            self.report_fault(name, "snapshot", exc)

    def _fail(self, name: str, phase: str, exc: BaseException) -> None:
        """A fault the tracker cannot go on after: disable it and say from where it is blind."""
        self.report_fault(name, phase, exc, disabled=True)
        self.disabled.add(name)
        tracker = self._trackers.pop(name, None)
        if tracker is not None and phase != "uninstall":
            # Its patches and hooks must not stay in place for the rest of the run.
            with contextlib.suppress(Exception):
                tracker.uninstall()

    def report_fault(
        self, name: str, phase: str, exc: BaseException, disabled: bool = False
    ) -> None:
        key = f"{name}/{phase}/{disabled}"
        if key in self.problems:
            return
        problem = InternalProblem.of(exc, phase, name, during=self.during, disabled=disabled)
        self.problems[key] = problem
        if self._on_problem is not None:
            self._on_problem(problem)


def _no_leak(found: Sequence[Resource]) -> bool:
    return all(r.category != "leak" for r in found)


def _one_line(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]

"""The leak path's look at the trackers through the grace period: each candidate described once,
the ignore rules applied then, and only trackers that still show one looked at again."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from leakguard.core.garbage import collections
from leakguard.core.lineage import LINEAGE, thread_epoch
from leakguard.core.parked import library_cache_of
from leakguard.core.roster import Roster
from leakguard.core.settings import IgnoreRule, Settings
from leakguard.core.stats import Stats, timing
from leakguard.core.tracker import AnyTracker, Conclusion, Key, Phase, Resource

Candidates = Callable[[str, AnyTracker, Mapping[Key, Any]], Mapping[Key, Any]]
"""What in a tracker's fresh snapshot may be a leak: what is new since the test began, or what a
fixture made that is still there."""


class Poll:
    """One check's poll, called again and again through the grace period. ``pending`` (the
    trackers still to look at) shrinks in place to those that showed a candidate."""

    def __init__(
        self,
        roster: Roster,
        pending: list[str],
        candidates: Candidates,
        settings: Settings,
        rules: Sequence[IgnoreRule],
        wait: float,
        stats: Stats | None,
    ) -> None:
        self._roster = roster
        self._pending = pending
        self._candidates = candidates
        self._settings = settings
        self._rules = rules
        self._wait = wait
        self._stats = stats
        self._described: dict[tuple[str, Key], Conclusion | None] = {}
        self._handles: dict[tuple[str, Key], Any] = {}
        self.collections = -1
        """`garbage.collections()` when the last poll began: what went since without a
        collection went by itself (`garbage.sort_out_garbage`)."""

    def __call__(self) -> list[Conclusion]:
        self.collections = collections()
        found: list[Conclusion] = []
        still: list[str] = []
        moment = Phase("grace", self._wait)
        described = self._described
        for name in self._pending:
            tracker = self._roster.instances.get(name)
            if tracker is None:
                continue
            try:
                now = tracker.snapshot(moment)
            except Exception as exc:
                self._roster.snapshot_fault(name, exc)
                continue
            try:
                items = self._candidates(name, tracker, now)
            except Exception as exc:
                self._roster.report_fault(name, "new_since", exc)
                continue
            count = len(found)
            for key, handle in items.items():
                self._handles[name, key] = handle
                if (name, key) not in described:
                    resource = self._describe(tracker, key, handle)
                    described[name, key] = Conclusion.of(resource) if resource else None
                conclusion = described[name, key]
                if conclusion is not None:
                    found.append(conclusion)
            if len(found) > count:
                still.append(name)
        self._pending[:] = still
        return found

    def describe_again(self, found: Sequence[Conclusion]) -> None:
        """What can change by itself may have changed during the wait (a shell that forked a
        daemon exec's it): describe it as it is now, keeping what was concluded."""
        for conclusion in found:
            name, key = conclusion.tracker, conclusion.key
            tracker = self._roster.instances.get(name)
            if tracker is None or not tracker.ends_by_itself:
                continue
            try:
                with timing(self._stats, "describe"):
                    fresh = tracker.describe(key, self._handles[name, key])
            except Exception as exc:  # the first description stands
                self._roster.report_fault(name, "describe", exc)
                continue
            conclusion.resource = fresh if self._settings.traceback else replace(fresh, origin=None)

    def _describe(self, tracker: AnyTracker, key: Key, handle: Any) -> Resource[Any] | None:
        """What ``key`` is, or ``None`` when a built-in ignore or an ignore rule lets it be."""
        try:
            with timing(self._stats, "describe"):
                resource = tracker.describe(key, handle)
        except Exception as exc:
            self._roster.report_fault(tracker.name, "describe", exc)
            resource = Resource(tracker.name, key, tracker.name, repr(key), "(description failed)")
        else:
            try:
                if tracker.builtin_ignore(resource) is not None:
                    return None
            except Exception as exc:  # not ignored, then: reported as what it is
                self._roster.report_fault(tracker.name, "builtin_ignore", exc)
        if not self._settings.traceback and resource.origin is not None:
            resource = replace(resource, origin=None)
        for rule in self._rules:
            if rule.matches(resource):
                return None
        return resource


def waiting_helps(
    found: Sequence[Conclusion],
    trackers: Mapping[str, AnyTracker],
    epoch: int,
    horizon: float,
) -> bool:
    """Whether the grace period (``horizon``) could change the verdict: a candidate may still
    end by itself (`Tracker.may_end`), or a live thread of the test (``epoch``) could still
    close a descriptor. A worker parked in a library's thread cache (`library_cache_of`)
    runs nothing of the test's until it is handed a job: it closes nothing meanwhile."""
    for conclusion in found:
        tracker = trackers.get(conclusion.tracker)
        if tracker is None:
            return True
        if tracker.ends_by_itself:
            try:
                if tracker.may_end(conclusion.resource, horizon):
                    return True
            except Exception:  # not proven: wait, as for any kind that ends by itself
                return True
    return any(
        LINEAGE.belongs(thread_epoch(thread), epoch) and library_cache_of(thread) is None
        for thread in threading.enumerate()
    )

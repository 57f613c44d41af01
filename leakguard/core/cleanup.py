"""Cleanup of what a check concluded: each tracker removes its own leaks, and every resource
gets one outcome, a failure included."""

from __future__ import annotations

from collections.abc import Sequence

from leakguard.core.faults import one_line
from leakguard.core.roster import Roster
from leakguard.core.tracker import Conclusion


def clean_up(leaks: Sequence[Conclusion], timeout: float, roster: Roster) -> None:
    """Let each tracker remove its leaks; record one outcome per resource."""
    by_tracker: dict[str, list[Conclusion]] = {}
    for conclusion in leaks:
        by_tracker.setdefault(conclusion.tracker, []).append(conclusion)
    for name, group in by_tracker.items():
        tracker = roster.instances.get(name)
        if tracker is None:
            outcomes = [f"{r.kind} not cleaned up (tracker disabled)" for r in group]
        else:
            try:
                outcomes = list(tracker.cleanup([c.resource for c in group], timeout))
            except Exception as exc:
                # Against these resources, not the tracker: it keeps checking later tests.
                roster.report_fault(name, "cleanup", exc)
                why = one_line(exc)
                outcomes = [f"{r.kind} {r.label}: cleanup failed ({why})" for r in group]
        for conclusion, outcome in zip(group, outcomes, strict=False):
            conclusion.cleanup = outcome

"""The run's timeline: resource counts after each checked test, its outcome, leaks and residue."""

from __future__ import annotations

from leakguard.timeline.counts import SnapshotCounter
from leakguard.timeline.record import Timeline

__all__ = ["SnapshotCounter", "Timeline"]

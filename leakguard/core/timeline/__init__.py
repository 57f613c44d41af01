"""The run's timeline: resource counts after each checked test, its outcome, leaks and residue."""

from __future__ import annotations

from leakguard.core.timeline.counts import SnapshotCounter
from leakguard.core.timeline.record import Timeline

__all__ = ["SnapshotCounter", "Timeline"]

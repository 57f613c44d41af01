"""What leakguard itself cost in a run (``--leakguard-stats``): time by phase, the slowest
flagged tests, and the slowest tests whose leak path ended with nothing to report (what they
made ended within the grace, or was a library's cache). Off by default; when off, nothing is
timed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

PHASES = (
    ("clean", "clean path (snapshots and compare, every checked test)"),
    ("polls", "leak path: snapshots, polls, report (loading it once)"),
    ("grace", "grace waits"),
    ("garbage", "garbage collections on the leak path"),
    ("describe", "describing new resources"),
    ("owners", "owner searches (owner objects, library caches)"),
    ("cleanup", "cleanup"),
)
SLOWEST = 5


class Stats:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys((name for name, _ in PHASES), 0.0)
        self.tests = 0
        self.flagged: dict[str, float] = {}
        """Owner -> seconds leakguard spent on its leak path."""
        self.unflagged: dict[str, float] = {}
        """Test -> seconds its leak path took when it found nothing to report in the end: the
        cost a user cannot see in any report (a thread ending within the grace)."""

    @contextmanager
    def timing(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start

    def to_dict(self) -> dict[str, Any]:
        return {
            "seconds": dict(self.seconds),
            "tests": self.tests,
            "flagged": dict(self.flagged),
            "unflagged": dict(self.unflagged),
        }

    def merge(self, data: Mapping[str, Any]) -> None:
        """Add a worker's figures (pytest-xdist)."""
        for phase, seconds in data.get("seconds", {}).items():
            self.seconds[phase] = self.seconds.get(phase, 0.0) + float(seconds)
        self.tests += int(data.get("tests", 0))
        for owner, seconds in data.get("flagged", {}).items():
            self.flagged[owner] = self.flagged.get(owner, 0.0) + float(seconds)
        for test, seconds in data.get("unflagged", {}).items():
            self.unflagged[test] = self.unflagged.get(test, 0.0) + float(seconds)

    def write(self, line: Callable[[str], None]) -> None:
        total = sum(self.seconds.values())
        line(f"leakguard's own cost: {total * 1000:.1f} ms over {self.tests} checked tests")
        for name, label in PHASES:
            ms = self.seconds.get(name, 0.0) * 1000
            per = ""
            if name == "clean" and self.tests:
                per = f" ({ms * 1000 / self.tests:.1f} µs per test)"
            line(f"    {label:<58} {ms:9.1f} ms{per}")
        _slowest(line, "slowest flagged (leak path):", self.flagged)
        if self.unflagged:
            total_ms = sum(self.unflagged.values()) * 1000
            _slowest(
                line,
                f"slowest not flagged ({len(self.unflagged)} tests took the leak path and had"
                f" nothing to report, {total_ms:.1f} ms in all):",
                self.unflagged,
            )


def _slowest(line: Callable[[str], None], title: str, times: Mapping[str, float]) -> None:
    slowest = sorted(times.items(), key=lambda item: -item[1])[:SLOWEST]
    if slowest:
        line(f"    {title}")
        for name, seconds in slowest:
            line(f"        {seconds * 1000:8.1f} ms  {name}")


_WAITED_ELSEWHERE = [0.0]


def waited_elsewhere(seconds: float) -> None:
    """A grace period spent outside the end-of-test check: running a test's event loop so its
    tasks can finish before their runner cancels them (`leakguard.trackers.tasks.loops`).
    Added to the grace waits by the next timed check; nothing else reads it."""
    _WAITED_ELSEWHERE[0] += seconds


def take_waited_elsewhere() -> float:
    seconds, _WAITED_ELSEWHERE[0] = _WAITED_ELSEWHERE[0], 0.0
    return seconds


@contextmanager
def timing(stats: Stats | None, phase: str) -> Iterator[None]:
    """``stats.timing(phase)``, or nothing at all when stats are off."""
    if stats is None:
        yield
    else:
        with stats.timing(phase):
            yield

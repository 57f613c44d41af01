"""Benchmark rows for the ``processes`` tracker, loaded by ``benchmarks/overhead.py``.

The plain ``processes`` row is one of overhead.py's built-ins (empty tests, its floor is two
raw ``snapshot()`` calls). The rows here show the two things that could make it grow: children
that live for the whole run (a session server: the cached read means they cost nothing per
test), and tests that spawn a process each (the slow path: a fresh read of the tree plus the
look for marked descendants among the pids handed out since, paid once per spawning test).
"""

from __future__ import annotations

import os
import subprocess
import timeit
from collections.abc import Callable

TRACKER = ["--leakguard", "-o", "leakguard_trackers=processes"]

_SESSION_CHILDREN = """
import subprocess

# Children that live for the whole run, like a session-scoped server's.
_HELD = [subprocess.Popen(["sleep", "600"]) for _ in range({count})]


def pytest_unconfigure(config):
    for proc in _HELD:
        proc.kill()
        proc.wait()
"""

_SPAWNING_TESTS = """
import os
import subprocess
import pytest

N = int(os.environ["LEAKGUARD_BENCH_N"])

@pytest.mark.parametrize("i", range(N))
def test_spawns(i):
    subprocess.run(["true"], check=True)
"""

SCENARIOS = [
    {
        "name": "processes, 4 session children",
        "args": TRACKER,
        "conftest": _SESSION_CHILDREN.format(count=4),
    },
    {
        "name": "processes, every test spawns",
        "args": TRACKER,
        "test_source": _SPAWNING_TESTS,
    },
]


def _floor_with_children(count: int) -> Callable[[], float]:
    """µs per test for two snapshots while ``count`` children live (the cached read)."""

    def measure() -> float:
        from leakguard.core.tracker import Phase
        from leakguard.trackers.processes.tracker import ProcessTracker

        held = [subprocess.Popen(["sleep", "600"]) for _ in range(count)]
        tracker = ProcessTracker()
        tracker.install()
        try:
            tracker.snapshot(Phase("after", 1.0))

            def both() -> None:
                tracker.snapshot(Phase("after", 1.0))
                tracker.snapshot(Phase("after", 1.0))

            best = min(timeit.repeat(both, number=2000, repeat=5)) / 2000
        finally:
            tracker.uninstall()
            for proc in held:
                proc.kill()
                proc.wait()
        return best * 1e6

    return measure


def _floor_after_a_spawn() -> float:
    """µs per spawning test: one full read with the look for marked descendants, + new_since.

    The spawn itself is not counted (the baseline run spawns too)."""
    from leakguard.core.tracker import Phase
    from leakguard.trackers.processes.tracker import ProcessTracker

    tracker = ProcessTracker()
    tracker.install()
    try:
        before = tracker.snapshot(Phase("before", 1.0))

        def after_spawn() -> None:
            tracker.log.bump()  # what a spawn does to the counter
            tracker.new_since(before, tracker.snapshot(Phase("after", 1.0)))

        best = min(timeit.repeat(after_spawn, number=200, repeat=5)) / 200
    finally:
        tracker.uninstall()
    return best * 1e6


FLOORS: dict[str, Callable[[], float]] = {
    "processes, 4 session children": _floor_with_children(4),
    "processes, every test spawns": _floor_after_a_spawn,
}

if __name__ == "__main__":  # a quick look without the full benchmark
    for name, floor in FLOORS.items():
        print(f"{name}: {floor():.1f} µs per test (floor)")
    print(f"pid {os.getpid()}")

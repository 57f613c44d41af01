"""Benchmark rows of the ``tasks`` tracker, run by ``benchmarks/overhead.py``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

ASYNC_EMPTY_TESTS = """
import os

import pytest

N = int(os.environ["LEAKGUARD_BENCH_N"])


@pytest.mark.parametrize("i", range(N))
async def test_empty(i):
    pass
"""

SCENARIOS = [
    {
        "name": "tasks (async empty test)",
        "args": [
            "--leakguard",
            "-o",
            "leakguard_trackers=tasks",
            "-p",
            "asyncio",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
        ],
        "baseline_args": [
            "-p",
            "asyncio",
            "-o",
            "asyncio_mode=auto",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
        ],
        "test_source": ASYNC_EMPTY_TESTS,
    },
]


def _two_snapshots_us(rounds: int = 20000) -> float:
    """µs per test for the two raw snapshots (setup and teardown) of a clean async test."""
    from leakguard.core.tracker import Phase
    from leakguard.trackers.tasks.tracker import TaskTracker

    tracker = TaskTracker()
    tracker.install()
    loop = asyncio.new_event_loop()
    try:
        start = time.perf_counter()
        for _ in range(rounds):
            before = tracker.snapshot(Phase("before", 1.0))
            tracker.new_since(before, tracker.snapshot(Phase("after", 1.0)))
        return (time.perf_counter() - start) / rounds * 1e6
    finally:
        loop.close()
        tracker.uninstall()


def _async_test_primitives_us(rounds: int = 20000) -> float:
    """µs per clean async test for what the tracker adds around one ``asyncio.Runner`` test:
    two snapshots, the wrapped loop ``__init__`` and ``create_task``, the runner-close hook."""
    from leakguard.core.tracker import Phase
    from leakguard.trackers.tasks.tracker import TaskTracker

    async def empty() -> None:
        pass

    def one() -> None:
        with asyncio.Runner() as runner:
            runner.run(empty())

    def best(fn: Callable[[], None]) -> float:
        start = time.process_time()
        for _ in range(rounds // 10):
            fn()
        return (time.process_time() - start) / (rounds // 10) * 1e6

    tracker = TaskTracker()

    def tracked() -> None:
        before = tracker.snapshot(Phase("before", 1.0))
        one()
        tracker.new_since(before, tracker.snapshot(Phase("after", 1.0)))

    diffs = []
    for _ in range(5):
        plain = best(one)
        tracker.install()
        try:
            checked = best(tracked)
        finally:
            tracker.uninstall()
        diffs.append(checked - plain)
    return sorted(diffs)[len(diffs) // 2]


FLOORS: dict[str, Callable[[], float]] = {"tasks": _two_snapshots_us}
if hasattr(asyncio, "Runner"):  # 3.11+
    FLOORS["tasks (async empty test)"] = _async_test_primitives_us

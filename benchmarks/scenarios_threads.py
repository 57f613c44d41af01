"""Benchmark rows of the ``threads`` tracker with many threads alive, run by
``benchmarks/overhead.py``: the clean path must cost the same with 10 threads or 10,000.

The crowd is started by a session fixture inside the timed test loop, so these rows include
one-off costs (10,000 thread starts, and attributing them to the fixture) spread over ``--n``
tests: read them with a large ``--n``. The per-test clean path alone, in-process, is ≈ 2 µs
with 10,000 threads alive (it was ≈ 2–4 ms before the start counter)."""

from __future__ import annotations

CROWD = """
import threading

import pytest


@pytest.fixture(scope="session", autouse=True)
def crowd():
    stop = threading.Event()
    old = threading.stack_size(64 * 1024)
    threads = [threading.Thread(target=stop.wait, daemon=True) for _ in range({count})]
    for t in threads:
        t.start()
    threading.stack_size(old)
    yield
    stop.set()
    for t in threads:
        t.join()
"""

SCENARIOS = [
    {
        "name": f"threads, {count:,} alive",
        "args": ["--leakguard", "-o", "leakguard_trackers=threads"],
        "conftest": CROWD.format(count=count),
    }
    for count in (1_000, 10_000)
]

"""Benchmark rows for the descriptor trackers (``sockets``, ``ports``, ``fds``), loaded by
``benchmarks/overhead.py``.

The clean path of the three is one shared scan per phase: a poll(2) probe of which numbers are
open (full listdir + fstat scans only after something was opened); its cost still grows with
the number of open descriptors: rows with ~50 and with 2,000 open, and,
for scale, the naive way (psutil's ``net_connections()`` + ``open_files()`` before and after
every test) on the same ~50.
"""

from __future__ import annotations

import os
import timeit
from collections.abc import Callable

TRACKERS = ["--leakguard", "-o", "leakguard_trackers=sockets ports fds"]

_OPEN_AT_IMPORT = """
import os

# Descriptors held for the whole run, like a big suite's imports and session fixtures hold.
_MISSING = max(0, {total} - len(os.listdir("/proc/self/fd")))
_HELD = [os.open(os.devnull, os.O_RDONLY) for _ in range(_MISSING)]
"""

_NAIVE = """
import psutil
import pytest


def pytest_addoption(parser):
    parser.addoption("--naive-snapshot", action="store_true")


def _snapshot(proc):
    return (
        {{(c.fd, c.laddr, c.raddr, c.status) for c in proc.net_connections(kind="all")}},
        {{(f.fd, f.path) for f in proc.open_files()}},
    )


@pytest.fixture(autouse=True)
def _naive_descriptor_snapshot(request):
    if not request.config.getoption("--naive-snapshot"):
        yield
        return
    proc = psutil.Process()
    before = _snapshot(proc)
    yield
    after = _snapshot(proc)
    assert after[0] <= before[0] and after[1] <= before[1]
"""

SCENARIOS = [
    {
        "name": "descriptors, ~50 fds",
        "args": TRACKERS,
        "conftest": _OPEN_AT_IMPORT.format(total=50),
    },
    {
        "name": "descriptors, 2000 fds",
        "args": TRACKERS,
        "conftest": _OPEN_AT_IMPORT.format(total=2000),
    },
    {
        "name": "naive psutil snapshot, ~50 fds",
        "args": ["-p", "no:leakguard", "--naive-snapshot"],
        "conftest": _OPEN_AT_IMPORT.format(total=50) + _NAIVE,
    },
]


def _scan_floor(total: int) -> Callable[[], float]:
    """µs per test for the two shared scans (one per phase) with ``total`` descriptors open."""
    # Full scans (listdir + fstat of each) cost ≈ 70 µs / 2.1 ms for 50 / 2,000 descriptors;
    # they now run only after something was opened.

    def measure() -> float:
        from leakguard.trackers.descriptors.scan import scan_fds

        held = [
            os.open(os.devnull, os.O_RDONLY)
            for _ in range(max(0, total - len(os.listdir("/proc/self/fd"))))
        ]
        try:
            # The steady state of a clean test: a scan that may keep the previous identities
            # (nothing opened since), i.e. the poll(2) number probe.
            first = scan_fds(None, opens=0)
            number = 200 if total > 500 else 2000
            best = (
                min(timeit.repeat(lambda: scan_fds(first, opens=0), number=number, repeat=5))
                / number
            )
        finally:
            for fd in held:
                os.close(fd)
        return 2 * best * 1e6

    return measure


def _naive_floor() -> float:
    """The same two snapshots the naive conftest takes, with ~50 descriptors, one a socket."""
    import socket

    import psutil

    proc = psutil.Process()
    pair = socket.socketpair()
    missing = max(0, 50 - len(os.listdir("/proc/self/fd")))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(missing)]

    def both() -> None:
        for _ in range(2):
            proc.net_connections(kind="all")
            proc.open_files()

    try:
        return min(timeit.repeat(both, number=10, repeat=3)) / 10 * 1e6
    finally:
        for fd in held:
            os.close(fd)
        for sock in pair:
            sock.close()


FLOORS: dict[str, Callable[[], float]] = {
    "descriptors, ~50 fds": _scan_floor(50),
    "descriptors, 2000 fds": _scan_floor(2000),
    "naive psutil snapshot, ~50 fds": _naive_floor,
}

"""What leakguard's recording hooks add to the calls they watch, in-process, without pytest.

Run:  python benchmarks/instrumentation.py [--rounds 9] [--trackers threads tasks ...]

The empty-test loop of `overhead.py` never opens a file or starts a thread, so it cannot show
this cost: real suites pay it inside their tests' call phase. Each row times one operation
(median of rounds, CPU time of this process), first with nothing installed, then with the
trackers' hooks installed (``Engine.activate``), and prints both and the difference.

The first row is any audit event (``sys._getframe`` raises one). leakguard adds no audit hook
(up to 2026-12-06 the descriptor trackers did): an audit hook runs on every audit event of the
process for the rest of it, every frame walk, logging call and traceback of the suite, so this
row guards that the difference stays ≈ 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from leakguard.core.engine import Engine
from leakguard.core.registry import TrackerRegistry

ALL = ["threads", "tasks", "processes", "sockets", "ports", "fds"]


def _audit_event() -> None:
    sys._getframe()


def _open_close(path: str) -> Callable[[], None]:
    def run() -> None:
        with open(path, "rb"):
            pass

    return run


def _socket() -> None:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()


def _socketpair() -> None:
    a, b = socket.socketpair()
    a.close()
    b.close()


def _thread() -> None:
    thread = threading.Thread(target=int)
    thread.start()
    thread.join()


async def _three_tasks() -> None:
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.create_task(asyncio.sleep(0)) for _ in range(3)))


def _run() -> None:
    # A loop made and closed (selector, self-pipe socketpair, the runner's cancel-all), with
    # three tasks: what pytest-asyncio and anyio do around every async test.
    asyncio.run(_three_tasks())


def _time(operation: Callable[[], None], number: int, rounds: int) -> float:
    """Median µs per call over ``rounds`` rounds of ``number`` calls (CPU time)."""
    for _ in range(max(1, number // 10)):
        operation()
    samples = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(number):
            operation()
        samples.append((time.process_time() - start) / number * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--trackers", nargs="*", default=ALL, choices=ALL)
    opts = parser.parse_args()
    with tempfile.NamedTemporaryFile(delete=False) as handle:
        path = handle.name
    operations: list[tuple[str, Callable[[], None], int]] = [
        ("an audit event (sys._getframe)", _audit_event, 200_000),
        ("open + close a file", _open_close(path), 20_000),
        ("socket() + close", _socket, 20_000),
        ("socketpair() + close both", _socketpair, 10_000),
        ("Thread start + join", _thread, 2_000),
        ("asyncio.run with 3 tasks", _run, 1_000),
    ]
    try:
        without = {name: _time(op, n, opts.rounds) for name, op, n in operations}
        engine = Engine(TrackerRegistry())
        engine.activate(opts.trackers)
        try:
            with_hooks = {name: _time(op, n, opts.rounds) for name, op, n in operations}
        finally:
            engine.close()
    finally:
        os.unlink(path)
    print(f"trackers: {' '.join(opts.trackers)}; Python {sys.version.split()[0]}")
    print()
    print("| operation | without (µs) | with hooks (µs) | added (µs) | ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, _, _ in operations:
        before, after = without[name], with_hooks[name]
        print(
            f"| {name} | {before:.2f} | {after:.2f} | {after - before:+.2f} | "
            f"{after / before:.2f}× |"
        )


if __name__ == "__main__":
    main()

"""The grace period: re-check with doubling sleeps before calling anything a leak."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

FIRST_DELAY = 0.001
MAX_DELAY = 0.1


def settle(
    poll: Callable[[], T],
    is_clean: Callable[[T], bool],
    grace: float,
    *,
    first_delay: float = FIRST_DELAY,
    max_delay: float = MAX_DELAY,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    first: T | None = None,
) -> T:
    """Poll until clean or until ``grace`` seconds have passed; return the last poll.

    A clean first poll returns at once: a test that leaks nothing never sleeps. Otherwise the
    sleeps double (1 ms, 2 ms, 4 ms … capped at ``max_delay``) so a thread that ends 5 ms after
    the test costs ≈ 7 ms, not a fixed wait. ``first``: a poll already made.
    """
    sleep = sleep or time.sleep  # looked up now, so a test can watch leakguard's sleeps
    result = poll() if first is None else first
    if is_clean(result) or grace <= 0:
        return result
    deadline = clock() + grace
    delay = first_delay
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            return result
        sleep(min(delay, remaining))
        delay = min(delay * 2, max_delay)
        result = poll()
        if is_clean(result):
            return result

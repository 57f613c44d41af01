"""Threads a library's own state proves parked: idle workers of a process-wide thread cache.

Such a worker runs nothing until the library hands it a job, and stays alive for the cache's
sake, whoever's call started it. Proven from the library's module state, never guessed from
names: a thread that is not proven parked is treated as any other.

Used where a live thread would otherwise count: as a leak (the ``threads`` tracker reports it
as the library's cache at once), as something that could still wake a task or close a
descriptor (the grace period is not waited for it).
"""

from __future__ import annotations

import sys

from leakguard.core import compat

_TRIO_CACHE = "trio._core._thread_cache"


def library_cache_of(thread: object) -> str | None:
    """The library module whose process-wide thread cache keeps ``thread`` idle, proven from
    that module's own state, or ``None``.

    trio's cache (``trio._core._thread_cache.THREAD_CACHE``) keeps each worker in its
    ``_idle_workers`` while it waits up to 10 s for the next job: such a worker is the cache's,
    whoever's call started it. A busy worker (a job the test left running) is not proven here,
    nor is a worker of another ``ThreadCache`` instance (trio's own tests make them).
    """
    module = sys.modules.get(_TRIO_CACHE)
    if module is None:
        return None
    target = compat.thread_target(thread)
    worker = getattr(target, "__self__", None)
    if worker is None or getattr(target, "__name__", None) != "_work":
        return None
    idle = getattr(getattr(module, "THREAD_CACHE", None), "_idle_workers", None)
    try:
        kept = isinstance(idle, dict) and worker in idle
    except TypeError:  # an unhashable object that only looks like a worker
        return None
    return _TRIO_CACHE if kept and getattr(worker, "_thread", None) is thread else None

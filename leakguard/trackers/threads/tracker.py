"""The ``threads`` tracker: live ``threading.Thread`` objects and raw ``_thread`` threads."""

from __future__ import annotations

import _thread
import itertools
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from leakguard.core import afterimport, compat, patching
from leakguard.core.lineage import LINEAGE, ORIGIN_ATTR, thread_epoch
from leakguard.core.origin import Origin, capture
from leakguard.core.parked import library_cache_of
from leakguard.core.tracker import Phase, Resource, Tracker
from leakguard.trackers.threads import owners as thread_owners

# Built-in ignores: threads started from these packages are their own business, each for a
# reason that holds whatever the test does.
BUILTIN_IGNORES: dict[str, str] = {
    "_pytest": "pytest's own machinery",
    "xdist": "pytest-xdist's worker plumbing",
    "execnet": "execnet's IO threads (pytest-xdist)",
    "pytest_timeout": "pytest-timeout's watchdog timer",
    "faulthandler": "faulthandler's watchdog",
    "coverage": "coverage.py's measurement threads",
}


def _package_of(filename: str) -> str | None:
    parts = filename.replace(os.sep, "/").split("/")
    for part in parts[:-1]:
        if part in BUILTIN_IGNORES:
            return part
    stem = os.path.splitext(parts[-1])[0]
    return stem if stem in BUILTIN_IGNORES else None


class RawThread:
    """A thread started with ``_thread.start_new_thread``: no ``Thread`` object exists for it."""

    def __init__(self, serial: int, function: Callable[..., Any], origin: Any, epoch: int) -> None:
        self.serial = serial
        self.function = function
        self.origin = origin
        self.epoch = epoch
        self.ident: int | None = None


def _qualified(obj: object) -> str:
    func = getattr(obj, "__func__", obj)
    module = getattr(func, "__module__", None) or "?"
    name = getattr(func, "__qualname__", None) or type(obj).__qualname__
    return f"{module}:{name}"


_RAW_THREADS: dict[int, RawThread] = {}
_RAW_SERIALS = itertools.count(1)


ThreadKey = threading.Thread | RawThread
"""A thread is its own identity (an ident can be reused by a later thread, an object cannot
while it is held); a raw ``_thread`` is its record."""


class ThreadTracker(Tracker[ThreadKey, None]):
    name = "threads"

    def __init__(self) -> None:
        # Live raw threads, keyed by serial; the patched start_new_thread adds and removes them.
        # Process-wide, like the patch: a nested user (a ``check()`` block inside a checked
        # test, a pytester run) shares the first user's wrapper, so it must share its records.
        self._raw = _RAW_THREADS
        self._serials = _RAW_SERIALS
        self._starts = self._count = -1  # at the last full look
        self._last: Mapping[ThreadKey, None] = {}
        self._pool_stamp: afterimport.Awaited | None = None

    def install(self) -> None:
        # Thread.start is stamped (origin, starter's epoch) by the lineage, which the engine
        # installs for every tracker; pools are stamped here, at construction.
        LINEAGE.install()
        patching.install(_thread, "start_new_thread", self._recording_start_new_thread)
        self._pool_stamp = thread_owners.install_pool_stamp()

    def uninstall(self) -> None:
        LINEAGE.uninstall()
        patching.uninstall(_thread, "start_new_thread")
        stamp, self._pool_stamp = self._pool_stamp, None
        if stamp is not None:
            thread_owners.uninstall_pool_stamp(stamp)

    def _recording_start_new_thread(self, original: Callable[..., int]) -> Callable[..., int]:
        raw_threads = self._raw
        serials = self._serials

        def start_new_thread(
            function: Callable[..., Any], args: tuple[Any, ...], kwargs: Any = None
        ) -> int:
            raw = RawThread(next(serials), function, capture(), LINEAGE.creator())

            def run(*a: Any, **kw: Any) -> Any:
                ident = raw.ident = _thread.get_ident()
                LINEAGE.raw[ident] = raw.epoch
                try:
                    return function(*a, **kw)
                finally:
                    raw_threads.pop(raw.serial, None)
                    LINEAGE.raw.pop(ident, None)

            raw_threads[raw.serial] = raw
            try:
                return original(run, args, kwargs or {})
            except BaseException:
                raw_threads.pop(raw.serial, None)
                raise
            finally:
                LINEAGE.note_start()  # after: see lineage._stamping_start

        return start_new_thread

    def snapshot(self, phase: Phase) -> Mapping[ThreadKey, None]:
        # No thread started and as many running as last time: the very same set, at the same
        # cost with 10,000 threads alive as with 10 (the engine compares by identity first).
        starts, count = LINEAGE.starts, compat.live_thread_count()
        if starts == self._starts and count == self._count and count >= 0:
            return self._last
        if self._pool_stamp is not None:  # hooking the pools failed: reported from here
            self._pool_stamp.raise_error()
        live: dict[ThreadKey, None] = dict.fromkeys(threading.enumerate())
        if self._raw:
            for raw in list(self._raw.values()):
                live[raw] = None
        self._starts, self._count, self._last = starts, count, live
        return live

    def new_since(
        self, before: Mapping[ThreadKey, None], after: Mapping[ThreadKey, None]
    ) -> dict[ThreadKey, None]:
        new = super().new_since(before, after)
        epoch = LINEAGE.current
        for thread in list(new):
            if isinstance(thread, RawThread):
                if not LINEAGE.belongs(thread.epoch, epoch):
                    del new[thread]
                continue
            # Started by code that is not the test's (a fixture's server accepting, a thread an
            # earlier test left, a C library's thread): that older owner answers for it.
            if not LINEAGE.belongs(thread_epoch(thread), epoch):
                del new[thread]
                continue
            # A new worker of a pool made before the test (a fixture's) is the pool growing on
            # demand, not the test leaking, even though the test's submit() started it.
            pool = thread_owners.executor_of(thread)
            if pool is not None and not LINEAGE.belongs(thread_epoch(pool), epoch):
                del new[thread]
        return new

    def creator_epoch(self, key: ThreadKey, handle: None) -> int | None:
        return key.epoch if isinstance(key, RawThread) else thread_epoch(key)

    def describe(self, key: ThreadKey, handle: None) -> Resource[ThreadKey]:
        if isinstance(key, RawThread):
            return Resource(
                self.name,
                key,
                "thread",
                f"(raw _thread, ident {key.ident})",
                detail=f"target={_qualified(key.function)}",
                origin=Origin.from_raw(key.origin) if key.origin else None,
                verb="started",
                handle=key,
            )
        thread = key
        daemon = "daemon" if thread.daemon else "non-daemon"
        owner = thread_owners.owner_label(thread)
        if owner:
            daemon = f"{daemon}, {owner}"
        target = compat.thread_target(thread)
        target_text = _qualified(type(thread).run if target is None else target)
        raw_origin = getattr(thread, ORIGIN_ATTR, None)
        return Resource(
            self.name,
            key,
            "thread",
            f"{thread.name!r} ({daemon})",
            detail=f"target={target_text}",
            origin=Origin.from_raw(raw_origin) if raw_origin else None,
            verb="started",
            handle=thread,
        )

    def builtin_ignore(self, resource: Resource[ThreadKey]) -> str | None:
        pool = thread_owners.executor_of(resource.handle)
        if pool is not None and compat.executor_name_prefix(pool) == "asyncio":
            # Lives as long as its event loop; a loop left open is the tasks tracker's report.
            return "asyncio's default executor"
        if resource.origin is None:
            return None
        package = _package_of(resource.origin.filename)
        return BUILTIN_IGNORES.get(package) if package else None

    def cleanup(self, resources: Sequence[Resource[ThreadKey]], timeout: float) -> list[str]:
        return thread_owners.stop_threads([r.handle for r in resources], timeout)

    def owner_object(self, resource: Resource[ThreadKey]) -> object | None:
        return resource.handle if isinstance(resource.handle, threading.Thread) else None

    def known_keeper(self, resource: Resource[ThreadKey]) -> str | None:
        return library_cache_of(resource.handle)

    def identify(self, obj: object) -> ThreadKey | None:
        if isinstance(obj, threading.Thread):
            return obj
        return None

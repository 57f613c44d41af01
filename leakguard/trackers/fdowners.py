"""The Python objects that own leaked descriptors, and closing through them.

Closing a descriptor behind its owner's back is a trap: the owner still holds the number and
closes it later, when it may name someone else's file. So cleanup finds the outermost owner
(a ``TextIOWrapper`` before its ``FileIO``, a ``socket``) and closes that. Finding owners walks
the garbage collector's objects (milliseconds): only ever for what leaked.
"""

from __future__ import annotations

import _io
import gc
import os
import select
import socket
import sys
from collections.abc import Collection, Iterable
from typing import Any

from leakguard.trackers.fddescribe import same_descriptor
from leakguard.trackers.fdorigins import RECORDER
from leakguard.trackers.fdscan import FdKey

_STDIO = 3
"""Descriptors 0–2 are never closed: they are the process's, whatever they point at now."""


def _rank(obj: Any) -> int:
    """Outer wrappers first: closing them flushes and closes what they wrap."""
    if isinstance(obj, _io._TextIOBase):
        return 3
    if isinstance(obj, _io._BufferedIOBase):
        return 2
    return 1


def _fileno(obj: Any) -> int:
    try:
        if getattr(obj, "closed", False):
            return -1
        fd = obj.fileno()
    except Exception:
        return -1
    return fd if isinstance(fd, int) else -1


def python_owners(fds: Collection[int]) -> dict[int, Any]:
    """The outermost live Python object owning each of ``fds`` (one pass over ``gc``)."""
    wanted = set(fds)
    owners: dict[int, Any] = {}
    if not wanted:
        return owners
    kinds: tuple[type, ...] = (_io._IOBase, socket.socket)
    if hasattr(select, "epoll"):
        kinds = (*kinds, select.epoll)
    tracked = gc.get_objects()
    _collect(tracked, kinds, wanted, owners)
    if wanted - owners.keys():
        # Some owners (``select.epoll``) are not tracked by the collector: look one step
        # further, at what the tracked objects refer to.
        _collect(gc.get_referents(*tracked), kinds, wanted - owners.keys(), owners)
    return owners


def _collect(
    objects: Iterable[Any], kinds: tuple[type, ...], wanted: set[int], owners: dict[int, Any]
) -> None:
    for obj in objects:
        if not isinstance(obj, kinds):
            continue
        fd = _fileno(obj)
        if fd in wanted and (fd not in owners or _rank(obj) > _rank(owners[fd])):
            owners[fd] = obj


def open_loop_fds() -> set[int]:
    """Descriptors of asyncio event loops not yet closed: their selector and self-pipe.

    Such a loop is reported once, as a loop, by the ``tasks`` tracker; its three descriptors
    are not three more leaks.
    """
    asyncio = sys.modules.get("asyncio")
    found: set[int] = set()
    if asyncio is None:
        return found
    from leakguard.trackers.task_watch import open_loops

    loops = open_loops()
    if loops is None:
        # The tasks tracker's hooks (which record every loop made) are off: search the heap.
        # Only ever on the leak path (describing a new descriptor), never on the clean path.
        loops = [o for o in gc.get_objects() if isinstance(o, asyncio.BaseEventLoop)]
    for obj in loops:
        if obj.is_closed():
            continue
        for part in (getattr(obj, "_selector", None), getattr(obj, "_ssock", None),
                     getattr(obj, "_csock", None)):  # fmt: skip
            fd = _fileno(part) if part is not None else -1
            if fd >= 0:
                found.add(fd)
    return found


def multiprocessing_helpers() -> tuple[set[int], set[int]]:
    """Descriptors and pids of multiprocessing's resource tracker and forkserver.

    Both are started lazily, once per process, by whichever test first needs them, and live
    until the run ends: their pipes are not that test's leak, and closing them would break
    every later test that uses multiprocessing.
    """
    fds: set[int] = set()
    pids: set[int] = set()
    tracker_mod = sys.modules.get("multiprocessing.resource_tracker")
    tracker = getattr(tracker_mod, "_resource_tracker", None)
    forkserver_mod = sys.modules.get("multiprocessing.forkserver")
    server = getattr(forkserver_mod, "_forkserver", None)
    for obj, fd_attr, pid_attr in (
        (tracker, "_fd", "_pid"),
        (server, "_forkserver_alive_fd", "_forkserver_pid"),
    ):
        fd = getattr(obj, fd_attr, None)
        pid = getattr(obj, pid_attr, None)
        if isinstance(fd, int):
            fds.add(fd)
        if isinstance(pid, int):
            pids.add(pid)
    return fds, pids


def close_descriptors(keys: Iterable[FdKey], kind: str) -> list[str]:
    """Close each descriptor the test opened; one outcome per key, in order."""
    keys = list(keys)
    live = [k for k in keys if k[0] >= _STDIO and same_descriptor(k)]
    owners = python_owners([k[0] for k in live])
    for key in live:
        if key[0] not in owners:
            recorded = RECORDER.socket_for(key[0])
            if recorded is not None:
                owners[key[0]] = recorded[0]
    outcomes: list[str] = []
    for key in keys:
        fd = key[0]
        name = f"fd {fd}" if kind == "fd" else kind
        if fd < _STDIO:
            outcomes.append(f"{name} left open (descriptors 0-2 are never closed)")
            continue
        if key not in live:
            outcomes.append(f"{name} already closed")
            continue
        owner = owners.get(fd)
        how = ""
        if owner is not None:
            try:
                owner.close()
                how = f" (through its {type(owner).__name__})"
            except Exception as exc:
                how = f" (its {type(owner).__name__}.close() failed: {exc!r})"
        if same_descriptor(key):
            try:
                os.close(fd)
            except OSError as exc:
                outcomes.append(f"{name} not closed ({exc.strerror})")
                continue
            how = how or " (os.close: no Python object owned it)"
        outcomes.append(f"{name} closed{how}")
    return outcomes

"""The Python objects that hold descriptors: found by one fault-tolerant pass over the heap and
grouped into chains (a ``TextIOWrapper`` over its buffer over its ``FileIO``), plus the holders
leakguard recognises but must never close (multiprocessing's shared-memory heap).

Only ever run for what leaked. The heap is other people's: a dead ``weakref.proxy``, an object
whose ``__class__`` or ``fileno()`` raises, a container changing size, must cost one object,
never the search.
"""

from __future__ import annotations

import _io
import gc
import os
import select
import socket
import stat
import sys
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from leakguard.core import compat
from leakguard.core.compat import aio

_HEAPTYPE = 1 << 9
"""``Py_TPFLAGS_HEAPTYPE``: a class made by a ``class`` statement (or ``type()``)."""
_HAVE_GC = 1 << 14
"""``Py_TPFLAGS_HAVE_GC``: the collector tracks the class's instances (``gc.get_objects``)."""
_LINKS = ("buffer", "raw", "_sock")
"""How a wrapper reaches what it wraps: ``TextIOWrapper.buffer``, ``Buffered*.raw``,
``socket.SocketIO._sock`` (what ``socket.makefile()`` builds; private, 3.10–3.13)."""


def _owner_kinds() -> tuple[type, ...]:
    kinds: list[type] = [_io._IOBase, socket.socket]
    for name in ("epoll", "devpoll", "kqueue"):
        kind = getattr(select, name, None)
        if isinstance(kind, type):
            kinds.append(kind)
    # A multiprocessing Connection holds a plain int: closing the number behind it lets it
    # close the number again later, when it names someone else's file (issue 9, item 1).
    connection = sys.modules.get("multiprocessing.connection")
    kind = getattr(connection, "Connection", None)
    if isinstance(kind, type):
        kinds.append(kind)
    return tuple(kinds)


def _fileno(obj: Any) -> int:
    """The descriptor ``obj`` holds open, or -1 (closed, detached, not an owner, or raising)."""
    try:
        if getattr(obj, "closed", False):
            return -1
        if getattr(obj, "closefd", True) is False:
            return -1  # ``open(fd, closefd=False)``: a view of someone else's descriptor
        fd = obj.fileno()
    except Exception:
        return -1
    return fd if isinstance(fd, int) else -1


def _inner(obj: Any) -> Any | None:
    for attr in _LINKS:
        try:
            inner = getattr(obj, attr, None)
        except Exception:  # a detached TextIOWrapper raises on .buffer
            return None
        if inner is not None and inner is not obj:
            return inner
    return None


@dataclass
class Chain:
    """The objects holding one descriptor through one innermost owner, outermost first."""

    objects: list[Any] = field(default_factory=list)

    @property
    def outermost(self) -> Any:
        return self.objects[0]

    def names(self) -> str:
        return ", ".join(type(o).__name__ for o in self.objects)


def _chains(claimants: list[Any]) -> list[Chain]:
    """Group the objects claiming one number by the innermost object they wrap."""
    by_root: dict[int, list[tuple[int, Any]]] = {}
    for obj in claimants:
        depth, root = 0, obj
        while depth < 6 and (inner := _inner(root)) is not None:
            depth, root = depth + 1, inner
        by_root.setdefault(id(root), []).append((depth, obj))
    chains = []
    for members in by_root.values():
        members.sort(key=lambda pair: -pair[0])
        chains.append(Chain([obj for _, obj in members]))
    return chains


def find_chains(
    fds: Collection[int],
    modes: Mapping[int, int] | None = None,
    polling: Mapping[int, Any] | None = None,
) -> dict[int, list[Chain]]:
    """Every live Python object holding each of ``fds`` open, grouped into chains (one pass).

    ``modes``: the ``st_mode`` of each of ``fds``, when the caller's scan knows it. Only the
    owners of an anonymous inode (``select.epoll``, ``kqueue``) or of a socket (a bare
    ``_socket.socket`` before 3.12) escape the collector's list; for every other kind of
    descriptor the costly second pass (what plain objects refer to) cannot find anything and is
    skipped. So is it for sockets: ``socket.socket`` and its subclasses are always tracked, only
    a bare ``_socket.socket`` would be missed, and a descriptor with no owner found is left open
    and reported, never closed.

    ``polling``: ``epoll`` objects already known to hold some of ``fds`` (through the selector
    that made them, `OriginRecorder.polling_objects`): no second pass for those.
    """
    wanted = set(fds)
    found: dict[int, list[Any]] = {}
    if not wanted:
        return {}
    kinds = _owner_kinds()
    tracked = gc.get_objects()
    # Each class decided once, then one exact-type test per object in a comprehension (the
    # fastest filter on 3.11+; ``compress``/``map`` is slower): the heap has 50,000 to 300,000
    # objects, and a call per object made this the leak path's slowest search. ``type()``
    # never runs user code (``isinstance`` reads ``__class__``, which a dead weakref.proxy
    # answers with ReferenceError).
    types = set(map(type, tracked))
    owner_types = {cls for cls in types if _is_owner_type(cls, kinds)}
    if owner_types:
        _collect([o for o in tracked if type(o) in owner_types], wanted, found)
    for fd, obj in (polling or {}).items():
        if fd in wanted:
            claims = found.setdefault(fd, [])
            if not any(o is obj for o in claims):
                claims.append(obj)
    missing = {fd for fd in wanted - found.keys() if _untracked_owner_possible(fd, modes)}
    untracked = {cls for cls in kinds if not cls.__flags__ & _HAVE_GC}
    if missing and untracked:
        # Some owners (``select.epoll``) are not tracked by the collector: look one step
        # further, at what plain containers and Python-class instances refer to. Never at
        # everything: on 3.12.1, ``gc.get_referents`` of the ``_asyncio`` module made the
        # interpreter hang in its final garbage collection. What is looked for there is an
        # instance of such a class itself (a subclass written in Python is tracked: the first
        # pass saw it).
        plain: dict[type, bool] = {}
        plain_types = {cls for cls in types if _plain_holder(cls, plain)}
        referents = gc.get_referents(*[o for o in tracked if type(o) in plain_types])
        if len(untracked) == 1:  # ``select.epoll`` alone (Linux): ``is`` is the cheapest test
            (kind,) = untracked
            candidates = [o for o in referents if type(o) is kind]
        else:
            candidates = [o for o in referents if type(o) in untracked]
        _collect(candidates, missing, found)
        del referents
    del tracked
    return {fd: _chains(objs) for fd, objs in found.items()}


def _untracked_owner_possible(fd: int, modes: Mapping[int, int] | None) -> bool:
    """Whether an owner the collector does not track could hold ``fd``: an epoll, devpoll or
    kqueue object (an anonymous inode, no file type in its mode; on Linux its link names
    ``[eventpoll]``). Unknown mode: assume it could. A socket: see `find_chains`."""
    mode = modes.get(fd) if modes is not None else None
    if mode is None:
        return True
    if stat.S_IFMT(mode) != 0:
        return False  # a file, pipe, device, directory or socket
    if sys.platform.startswith("linux"):
        try:
            return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventpoll]"
        except OSError:
            return True
    return True


_CONTAINERS = (list, tuple, dict, set, frozenset, deque)


def _plain_holder(cls: type, verdicts: dict[type, bool]) -> bool:
    """A builtin container, or a class written in Python all the way down to ``object``:
    what its traversal visits is its items or attributes, nothing of a C module's state."""
    verdict = verdicts.get(cls)
    if verdict is None:
        try:
            verdict = cls in _CONTAINERS or all(
                base is object or bool(base.__flags__ & _HEAPTYPE) for base in cls.__mro__
            )
        except Exception:
            verdict = False
        verdicts[cls] = verdict
    return verdict


def _is_owner_type(cls: type, kinds: tuple[type, ...]) -> bool:
    """Whether instances of ``cls`` may own a descriptor (never raises: the heap holds odd
    classes)."""
    try:
        return issubclass(cls, kinds)
    except Exception:
        return False


def _collect(owners: list[Any], wanted: set[int], found: dict[int, list[Any]]) -> None:
    """Add those of ``owners`` that hold one of ``wanted`` to ``found``."""
    for obj in owners:
        fd = _fileno(obj)
        if fd in wanted:
            claims = found.setdefault(fd, [])
            if not any(o is obj for o in claims):
                claims.append(obj)


# --- holders that must never be closed --------------------------------------------------------
@dataclass(frozen=True)
class Holder:
    """A process-wide object holding a descriptor as a plain int, which only it may close."""

    obj: Any
    label: str


def library_holders(keys: Iterable[tuple[int, int, int]]) -> dict[int, Holder]:
    """Descriptors held by multiprocessing's shared-memory heap (``Value``, ``Array``).

    The first ``multiprocessing.Value`` of the process maps one arena (a deleted
    ``/dev/shm/pym-…`` file and the mmap's own copy of its number), kept in the class attribute
    ``multiprocessing.heap.BufferWrapper._heap`` for the life of the process, with a finalizer
    that closes the number later. (Private attributes, checked on 3.10–3.13.)
    """
    arenas = compat.shared_memory_arenas()
    found: dict[int, Holder] = {}
    if not arenas:
        return found
    files: dict[tuple[int, int], Any] = {}
    for arena in arenas:
        fd = getattr(arena, "fd", -1)
        if isinstance(fd, int) and fd >= 0:
            try:
                st = os.fstat(fd)
            except OSError:
                continue
            files[st.st_dev, st.st_ino] = arena
    for fd, dev, ino in keys:
        arena = files.get((dev, ino))
        if arena is not None:
            found[fd] = Holder(arena, "multiprocessing's shared-memory heap (multiprocessing.heap)")
    return found


def open_loop_fds() -> set[int]:
    """Descriptors of asyncio event loops not yet closed: their selector and self-pipe.

    Such a loop is reported once, as a loop, by the ``tasks`` tracker; its three descriptors
    are not three more leaks.
    """
    asyncio = sys.modules.get("asyncio")
    found: set[int] = set()
    if asyncio is None:
        return found
    # Loaded with the tasks tracker; without it, its hooks cannot be recording loops.
    recording = sys.modules.get("leakguard.trackers.tasks.recording")
    loops = recording.open_loops() if recording is not None else None
    if loops is None:
        # The tasks tracker's hooks (which record every loop made) are off: search the heap.
        # Only ever on the leak path (describing a new descriptor), never on the clean path.
        loops = []
        for obj in gc.get_objects():
            try:
                if isinstance(obj, asyncio.BaseEventLoop):
                    loops.append(obj)
            except Exception:  # a dead weakref.proxy: not a loop
                continue
    for obj in loops:
        try:
            if obj.is_closed():
                continue
            parts = aio.loop_wakeup_parts(obj)
        except Exception:
            continue
        for part in parts:
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
    helpers = compat.multiprocessing_helpers()
    return (
        {fd for fd, _ in helpers if fd is not None},
        {pid for _, pid in helpers if pid is not None},
    )

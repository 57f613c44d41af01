"""asyncio's private parts: every pending task, found the cheapest way each Python version
allows, and what a loop or a task keeps to itself. Checked on CPython 3.10–3.13; 3.14 per its
release notes.

- 3.10, 3.11: one global ``WeakSet`` of tasks (``asyncio.tasks._all_tasks``).
- 3.12, 3.13: a ``WeakSet`` of scheduled tasks plus a ``set`` of tasks running eagerly.
- 3.14+: native tasks live in per-thread linked lists with no Python handle; only
  ``asyncio.all_tasks(loop)`` reaches them, so we ask it for each loop we know of, and add the
  tasks created since the tracker was installed (their creation was recorded anyway).
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from typing import Any

from leakguard.core import compat

# asyncio itself is not imported here: this module is loaded with the descriptor trackers, and a
# run that never uses asyncio must not pay for importing it (`leakguard.core.afterimport`).


def get_running_loop() -> Any:
    """The running loop of this thread or ``None``, never raising; ``None`` before asyncio is
    imported (``asyncio._get_running_loop``)."""
    asyncio = sys.modules.get("asyncio")
    return asyncio._get_running_loop() if asyncio is not None else None


PendingTasks = Callable[[], dict[Any, Any]]
"""Every pending task, as a fresh ``{task: None}`` the caller may add to."""


def _copy(registry: Any) -> list[Any]:
    """A stable copy of a set of tasks that may change meanwhile (another thread's loop)."""
    for _ in range(100):
        try:
            return list(registry)
        except RuntimeError:  # changed size during iteration: try again
            continue
    return []


def _from_registries(weak: Any, strong: Any = None) -> PendingTasks:
    """Pending tasks of a ``WeakSet`` (and of a plain ``set``, the eager tasks of 3.12+).

    The ``WeakSet``'s set of references is copied in one C call (atomic under the GIL):
    iterating the ``WeakSet`` itself costs ~3× and could raise if a task is added meanwhile.
    """
    refs = getattr(weak, "data", None)
    if not isinstance(refs, set):
        registries = tuple(r for r in (weak, strong) if r is not None)

        def pending_slow() -> dict[Any, None]:
            return {t: None for r in registries for t in _copy(r) if not t.done()}

        return pending_slow

    def pending() -> dict[Any, None]:
        found: dict[Any, None] = {}
        if refs:
            for ref in refs.copy():
                task = ref()
                if task is not None and not task.done():
                    found[task] = None
        if strong:
            for task in _copy(strong):
                if not task.done():
                    found[task] = None
        return found

    return pending


def _from_loops(
    loops: weakref.WeakKeyDictionary[Any, Any], created: weakref.WeakKeyDictionary[Any, Any]
) -> PendingTasks:
    """Per loop we know of, plus every task created through the wrapped ``create_task`` (which
    also covers a loop made before the tracker was installed)."""
    import asyncio  # loaded: the tasks tracker's hooks wait for it

    all_tasks = asyncio.all_tasks
    get_running = asyncio._get_running_loop
    created_refs = compat.weak_key_data(created)

    def pending() -> dict[Any, None]:
        found: dict[Any, None] = {}
        known = list(loops)
        running = get_running()
        if running is not None and running not in loops:
            known.append(running)  # e.g. a uvloop loop: not a BaseEventLoop, so never recorded
        for loop in known:
            try:
                found.update(dict.fromkeys(all_tasks(loop)))
            except Exception:  # a third-party loop that all_tasks() cannot read
                continue
        for ref in list(created_refs):
            task = ref()
            if task is not None and task not in found and not task.done():
                found[task] = None
        return found

    return pending


def pending_tasks_finder(
    loops: weakref.WeakKeyDictionary[Any, Any], created: weakref.WeakKeyDictionary[Any, Any]
) -> PendingTasks:
    """A function returning ``{task: None}`` for every not-done task it can see (asyncio is
    imported by then: the tasks tracker's hooks wait for it)."""
    from asyncio import tasks as asyncio_tasks

    if sys.version_info < (3, 14) and not hasattr(asyncio_tasks, "_py_all_tasks"):
        if hasattr(asyncio_tasks, "_scheduled_tasks"):
            eager = getattr(asyncio_tasks, "_eager_tasks", None)
            return _from_registries(asyncio_tasks._scheduled_tasks, eager)
        if hasattr(asyncio_tasks, "_all_tasks"):
            return _from_registries(asyncio_tasks._all_tasks)
    return _from_loops(loops, created)


def task_loop(task: Any) -> Any:
    """The loop of a task that lacks ``get_loop()`` (an old third-party future): ``_loop``."""
    return getattr(task, "_loop", None)


def loop_thread_id(loop: Any) -> int | None:
    """The ident of the thread running ``loop`` (``BaseEventLoop._thread_id``), else ``None``."""
    ident = getattr(loop, "_thread_id", None)
    return ident if isinstance(ident, int) else None


def policy_current_loop(policy: Any) -> Any:
    """The loop the policy holds as this thread's current one (``_local._loop``), without
    creating one as ``get_event_loop()`` would."""
    return getattr(getattr(policy, "_local", None), "_loop", None)


def loop_wakeup_parts(loop: Any) -> tuple[Any, Any, Any]:
    """A selector loop's selector and self-pipe sockets (``_selector``, ``_ssock``, ``_csock``):
    descriptors the loop owns and closes with itself."""
    return (
        getattr(loop, "_selector", None),
        getattr(loop, "_ssock", None),
        getattr(loop, "_csock", None),
    )

"""The asyncio hooks of the ``tasks`` tracker: where each task and loop was created, and which
tasks a runner (pytest-asyncio's, anyio's, ``asyncio.run``) was about to cancel silently.

One `TaskWatch` is shared by every active tracker: the patches are reference-counted, so a
``leakguard.check`` block inside a checked test reuses the wrapper (and the watch) of the run.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import sys
import threading
import time
import weakref
from asyncio import base_events
from collections.abc import Callable
from types import CodeType, FrameType, ModuleType
from typing import Any

from leakguard.core import patching
from leakguard.core.compat.aio import PendingTasks, pending_tasks_finder
from leakguard.core.lineage import LINEAGE
from leakguard.core.origin import RawOrigin, capture, is_library_frame_file
from leakguard.trackers.tasks import loops as loop_drive
from leakguard.trackers.tasks.describe import TaskFacts, builtin_reason, facts_of

_WATCH_ATTR = "__leakguard_task_watch__"
_MAX_SILENCED = 256

# Modules whose module-level ``_cancel_all_tasks(loop)`` a runner calls right before it cancels
# every task left on its loop: asyncio's own (``asyncio.run``, ``asyncio.Runner``) and the
# 3.10 backports that pytest-asyncio and anyio use instead of ``asyncio.Runner``.
_RUNNER_MODULES = ("asyncio.runners", "backports.asyncio.runner.runner", "anyio._backends._asyncio")


# Plain classes, not dataclasses: defining a dataclass costs 0.25-0.5 ms on Python 3.10-3.12,
# paid at every checked run's start-up.
class LoopInfo:
    __slots__ = ("epoch", "implicit", "origin", "thread")

    def __init__(self, origin: RawOrigin | None, implicit: bool) -> None:
        self.origin = origin
        self.implicit = implicit  # made by the policy's get_event_loop(): the thread's default
        # The thread that made the loop: only that thread's loops are run for a grace period,
        # so leakguard never races another thread that is about to run its own loop.
        self.thread = threading.get_ident()
        # The epoch of the code that made it: a loop made by a thread an earlier test left is
        # that test's, never the one running now (closing it would pull it from under its
        # thread).
        self.epoch = LINEAGE.creator()


class SilentCancel:
    """A task a runner was about to cancel: described while it still pended."""

    __slots__ = ("at", "canceller", "facts", "task")

    def __init__(self, task: Any, facts: TaskFacts, canceller: str) -> None:
        self.task = task
        self.facts = facts
        self.canceller = canceller
        self.at = time.monotonic()


class TaskWatch:
    """What the patches record; trackers read it in their snapshots."""

    def __init__(self) -> None:
        # Per task: where it was created, and the epoch of the code that created it (see
        # core.lineage: a task made on a loop that a fixture's thread runs is that fixture's,
        # not the current test's). One weak dictionary: each entry costs a weak reference.
        self.tasks: weakref.WeakKeyDictionary[Any, tuple[RawOrigin | None, int]] = (
            weakref.WeakKeyDictionary()
        )
        self.loops: weakref.WeakKeyDictionary[Any, LoopInfo] = weakref.WeakKeyDictionary()
        self.silenced: dict[Any, SilentCancel] = {}
        self.reported: weakref.WeakSet[Any] = weakref.WeakSet()
        self.grace = 1.0
        self.pending: PendingTasks = pending_tasks_finder(self.loops, self.tasks)
        self.patched_runners: list[ModuleType] = []
        self.users = 0
        self.faults = 0  # errors swallowed in a runner's teardown (never raised into it)

    def before_silent_cancel(self, loop: Any) -> None:
        """Called by a runner right before it cancels all tasks left on ``loop``."""
        # The clean path: one look at the task registry, no per-loop filtering.
        pending = [t for t in self.pending() if loop_drive.loop_of(t) is loop]
        if not pending or loop_drive.loop_state(loop) != "idle":
            return
        candidates = [
            task
            for task in pending
            if task not in self.reported
            and task not in self.silenced
            and builtin_reason(facts_of(task).coro) is None
        ]
        if not candidates:
            return
        # The grace period: a task that finishes in time was no leak. Spent here, because the
        # runner is about to cancel it and close the loop; not at all when nothing can wake
        # the tasks meanwhile (a forgotten consumer waiting on a queue).
        if not loop_drive.stalled(loop, self.grace):
            loop_drive.drive(loop, candidates, self.grace)
        canceller = _who_cancels(sys._getframe(1))
        for task in candidates:
            if not task.done():
                self.silenced[task] = SilentCancel(task, facts_of(task), canceller)
        while len(self.silenced) > _MAX_SILENCED:
            del self.silenced[next(iter(self.silenced))]


def _who_cancels(frame: FrameType | None) -> str:
    """Name the runner for the report: whose teardown would have cancelled the task."""
    seen: list[tuple[str, str]] = []
    while frame is not None and len(seen) < 40:
        seen.append((str(frame.f_globals.get("__name__", "")), frame.f_code.co_name))
        frame = frame.f_back
    modules = [module for module, _ in seen]
    if any(m.startswith("pytest_asyncio") for m in modules):
        return "pytest-asyncio"
    if any(m.startswith("anyio") for m in modules):
        return "anyio's pytest plugin" if "anyio.pytest_plugin" in modules else "anyio"
    if ("asyncio.runners", "run") in seen:
        return "asyncio.run"
    return "asyncio.Runner"


def _awaited_by_their_creator() -> tuple[frozenset[CodeType], dict[str, Any] | None]:
    """Tasks no one can leak, so not worth a frame walk: the loop's own shutdown coroutines
    (awaited by the runner), and the task ``Runner.run`` makes for the test itself (the only
    task ``asyncio.runners`` creates: known by the globals of the calling frame)."""
    loop_class = base_events.BaseEventLoop
    coros = {loop_class.shutdown_asyncgens.__code__}
    if hasattr(loop_class, "shutdown_default_executor"):
        coros.add(loop_class.shutdown_default_executor.__code__)
    runners = sys.modules.get("asyncio.runners") if hasattr(asyncio, "Runner") else None
    return frozenset(coros), vars(runners) if runners is not None else None


def _make_create_task(original: Callable[..., Any]) -> Callable[..., Any]:
    watch = TaskWatch()
    tasks = watch.tasks
    creator = LINEAGE.creator
    skip_coros, runner_globals = _awaited_by_their_creator()
    getframe = sys._getframe

    def create_task(self: Any, coro: Any, *args: Any, **kwargs: Any) -> Any:
        task = original(self, coro, *args, **kwargs)
        if getattr(coro, "cr_code", None) in skip_coros:
            return task
        # One frame fetch, no ``f_code`` read unless kept: with an audit hook in the process
        # (a user's tool's) each raises an event (≈ 0.2 µs), on every task.
        caller = getframe(1)
        if caller.f_globals is runner_globals:
            return task
        # Where the task was created: a raw frame walk (≈ 1–2 µs), formatted only on a leak.
        try:
            tasks[task] = (capture(caller), creator())
        except TypeError:  # a task factory's task may lack weak references
            watch.faults += 1
        return task

    setattr(create_task, _WATCH_ATTR, watch)
    functools.update_wrapper(create_task, original, assigned=(), updated=())
    return create_task


def _loop_info(frame: FrameType | None) -> LoopInfo:
    """Where a loop is being made, in one walk that also spots the policy's implicit loop.

    The frames below the first one outside the stdlib are asyncio's own: if one of them is
    the policy's ``get_event_loop()`` (3.10–3.13), the loop is the thread's default loop.
    """
    implicit = False
    depth = 0
    while frame is not None and depth < 40:
        code = frame.f_code
        if not is_library_frame_file(code.co_filename):
            return LoopInfo((code, frame.f_lineno), implicit)
        if code.co_name == "get_event_loop" and frame.f_globals.get("__name__") == "asyncio.events":
            implicit = True
        frame = frame.f_back
        depth += 1
    return LoopInfo(None, implicit)


# How deep ``asyncio.Runner._lazy_init`` sits below the ``BaseEventLoop.__init__`` wrapper when a
# runner makes the default loop: BaseSelectorEventLoop, _UnixSelectorEventLoop, the policy's
# new_event_loop, events.new_event_loop, then the runner. One probe there saves walking (and
# materialising) the six asyncio frames on the path every pytest-asyncio test takes.
_RUNNER_DEPTH = 5


def _make_loop_init(watch: TaskWatch) -> Callable[[Callable[..., None]], Callable[..., None]]:
    runner = getattr(asyncio, "Runner", None)
    lazy_init = getattr(getattr(runner, "_lazy_init", None), "__code__", None)
    getframe = sys._getframe

    def make(original: Callable[..., None]) -> Callable[..., None]:
        loops = watch.loops

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # the patched dunder
            original(self, *args, **kwargs)
            try:
                probe: FrameType | None = getframe(_RUNNER_DEPTH)
            except ValueError:  # a shallower stack: not a runner's loop
                probe = None
            if probe is not None and probe.f_code is lazy_init:
                loops[self] = LoopInfo(capture(probe.f_back), False)
            else:
                loops[self] = _loop_info(getframe(1))

        functools.update_wrapper(__init__, original, assigned=(), updated=())
        return __init__

    return make


def _make_cancel_all(watch: TaskWatch) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    def make(original: Callable[[Any], None]) -> Callable[[Any], None]:
        def _cancel_all_tasks(loop: Any) -> None:
            try:
                watch.before_silent_cancel(loop)
            except Exception:  # never break the runner's own cleanup; count it for tests
                watch.faults += 1
            original(loop)

        functools.update_wrapper(_cancel_all_tasks, original, assigned=(), updated=())
        return _cancel_all_tasks

    return make


def _runner_modules() -> list[ModuleType]:
    modules = []
    for name in _RUNNER_MODULES:
        module = sys.modules.get(name)
        if module is None and name == "anyio._backends._asyncio" and sys.version_info < (3, 11):
            # anyio's plugin brings its own runner on 3.10, imported at its first test: import it
            # now (only when anyio is in use) so that first test is watched too.
            if "anyio" in sys.modules:
                try:
                    module = importlib.import_module(name)
                except Exception:
                    module = None
        if module is not None and callable(getattr(module, "_cancel_all_tasks", None)):
            modules.append(module)
    return modules


def acquire() -> TaskWatch:
    """Install the hooks (or join them) and return the shared watch."""
    patching.install(base_events.BaseEventLoop, "create_task", _make_create_task)
    watch: TaskWatch = getattr(base_events.BaseEventLoop.create_task, _WATCH_ATTR)
    patching.install(base_events.BaseEventLoop, "__init__", _make_loop_init(watch))
    if not watch.users:
        watch.patched_runners = _runner_modules()
    watch.users += 1
    for module in watch.patched_runners:
        patching.install(module, "_cancel_all_tasks", _make_cancel_all(watch))
    return watch


def release(watch: TaskWatch) -> None:
    watch.users -= 1
    for module in watch.patched_runners:
        patching.uninstall(module, "_cancel_all_tasks")
    patching.uninstall(base_events.BaseEventLoop, "__init__")
    patching.uninstall(base_events.BaseEventLoop, "create_task")


def open_loops() -> list[Any] | None:
    """Loops made since the hooks were installed and not closed; ``None`` without the hooks.

    For the ``fds`` tracker: it can name a loop's selector and self-pipe descriptors from this
    list instead of searching the heap for loops.
    """
    watch: TaskWatch | None = getattr(base_events.BaseEventLoop.create_task, _WATCH_ATTR, None)
    if watch is None:
        return None
    return [loop for loop in list(watch.loops) if not loop.is_closed()]

"""The ``tasks`` tracker: not-done asyncio tasks on any loop, and event loops a test left open.

Its hooks wait for asyncio (`leakguard.core.afterimport`): until a run imports it no task or loop
can exist, and importing it (with ``ssl``) is ≈ 15 ms of start-up that a suite that never uses
asyncio would pay. The modules that read asyncio (`recording`, `loops`) are loaded with it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from leakguard.core import afterimport, compat
from leakguard.core.lineage import LINEAGE
from leakguard.core.origin import Origin
from leakguard.core.tracker import Phase, Resource, Tracker
from leakguard.core.weaksnapshot import WeakSnapshot
from leakguard.trackers.tasks.describe import builtin_reason, facts_of

if TYPE_CHECKING:
    from leakguard.core.compat.aio import PendingTasks
    from leakguard.trackers.tasks.recording import LoopInfo, SilentCancel, TaskWatch

_CANCEL_TRACKING = sys.version_info >= (3, 11)  # ``Task.cancelling()``
# Seconds (plus three grace periods) a silently cancelled task stays visible to snapshots: long
# enough for the teardown check that follows, short enough not to weigh on every later test.
RECORD_TTL = 30.0

_NOTHING: dict[Any, Any] = {}
"""The snapshot before asyncio is imported: one object, so two of them compare by identity."""


TaskKey = Any
"""A task (``asyncio.Task`` or any future a task factory makes) or an event loop."""
TaskHandle: TypeAlias = "SilentCancel | LoopInfo | None"
"""``None`` for a live task; the record of a task a runner cancelled silently; a loop's record."""


class TaskTracker(Tracker[TaskKey, TaskHandle]):
    name = "tasks"

    def __init__(self) -> None:
        # Seconds a task may take to finish when its runner is about to cancel it: the
        # checked test's grace period, from the phase of its first snapshot.
        self.grace = 1.0
        self._watch: TaskWatch | None = None
        self._pending: PendingTasks | None = None
        self._awaiting: afterimport.Awaited | None = None
        self._lock = threading.Lock()

    def install(self) -> None:
        if self._watch is None and self._awaiting is None:
            self._awaiting = afterimport.when_imported("asyncio", self._hook_asyncio)

    def _hook_asyncio(self) -> None:
        """asyncio is imported: hook its loops and tasks (in the importing thread, before the
        importer gets asyncio back), or join the hooks already there."""
        with self._lock:
            if self._watch is not None:
                return
            from leakguard.trackers.tasks.recording import acquire  # loads with asyncio

            watch = acquire()
            self._pending = watch.pending
            self._watch = watch

    def uninstall(self) -> None:
        awaiting, self._awaiting = self._awaiting, None
        if awaiting is not None:
            awaiting.cancel()
        with self._lock:
            watch, self._watch = self._watch, None
        if watch is not None:
            from leakguard.trackers.tasks.recording import release

            release(watch)

    # --- the clean path ------------------------------------------------------------------
    def snapshot(self, phase: Phase) -> Mapping[TaskKey, TaskHandle]:
        watch, pending = self._watch, self._pending
        if watch is None or pending is None:
            return self.snapshot(phase) if self._hooked_now() else _NOTHING
        self.grace = watch.grace = phase.grace
        snap: dict[TaskKey, TaskHandle] = pending()
        if snap and _CANCEL_TRACKING:
            snap = self._settle_cancelled(snap, pending)
        if watch.silenced:
            # Tasks a runner cancelled silently: still "there" until cleanup has reported them,
            # or until no check can still be waiting for them (an unchecked test's, say).
            expired = time.monotonic() - RECORD_TTL - 3 * self.grace
            for task, record in list(watch.silenced.items()):
                if record.at < expired:
                    del watch.silenced[task]
                else:
                    snap[task] = record
        # {weakref: info}: iterating the WeakKeyDictionary itself costs ~3×. Closed loops stay
        # listed while referenced (they go with their last reference): on 3.14 their tasks are
        # found through them.
        loops = compat.weak_key_data(watch.loops)
        if loops:
            for ref, info in list(loops.items()):
                loop = ref()
                if loop is not None and not info.implicit and not loop.is_closed():
                    snap[loop] = info
        # Weakly held: the engine keeps snapshots across a test and between tests, and a loop
        # or task listed by a strong one would be listed by every later one, never freed.
        return WeakSnapshot(snap) if snap else _NOTHING

    def _hooked_now(self) -> bool:
        """No hooks yet: whether there are now. Nothing can be seen while asyncio is not
        imported; a fault in hooking it is raised here, where the engine reports it; an import
        the finder did not follow (an unusual loader) is hooked now."""
        awaiting = self._awaiting
        if awaiting is None:
            self.install()  # a snapshot of a tracker never installed
            awaiting = self._awaiting
        if awaiting is not None:
            awaiting.raise_error()
        if "asyncio" not in sys.modules:
            return False
        self._hook_asyncio()
        return self._watch is not None

    def _settle_cancelled(
        self, snap: dict[TaskKey, TaskHandle], pending: PendingTasks
    ) -> dict[TaskKey, TaskHandle]:
        """Give tasks whose cancellation was requested the loop turn they need to end.

        ``task.cancel()`` without awaiting the task is the usual way to stop one; on an idle
        loop it only takes effect when the loop runs again.
        """
        stopping = [t for t in snap if t.cancelling()]
        if not stopping:
            return snap
        from leakguard.trackers.tasks import loops as loop_drive  # loaded with asyncio

        for loop, group in self._by_own_loop(stopping):
            loop_drive.drive(loop, group, 0.0)
        return pending()

    def new_since(
        self, before: Mapping[TaskKey, TaskHandle], after: Mapping[TaskKey, TaskHandle]
    ) -> dict[TaskKey, TaskHandle]:
        new = super().new_since(before, after)
        if not new:
            return new
        from leakguard.trackers.tasks import loops as loop_drive  # loaded with asyncio
        from leakguard.trackers.tasks.recording import LoopInfo

        watch = self._watch
        if watch is not None:
            epoch = LINEAGE.current
            for key in list(new):
                # Made by code that is not the test's (a session server's loop in its own
                # thread, a thread an earlier test left): its owner answers for it.
                made = self.creator_epoch(key, new[key])
                if made is not None and not LINEAGE.belongs(made, epoch):
                    del new[key]
        live: list[Any] = [k for k, h in new.items() if h is None]
        if live:
            # A task on a loop nobody runs cannot finish while we sleep: give its loop a turn
            # at every poll of the grace period.
            for loop, group in self._by_own_loop(live):
                loop_drive.drive(loop, group, 0.0)
            for task in live:
                if task.done():
                    del new[task]
        for key, handle in list(new.items()):
            if isinstance(handle, LoopInfo) and key.is_closed():
                del new[key]
        return new

    def may_end(self, resource: Resource[TaskKey], horizon: float) -> bool:
        """A task (or an open loop) can end in time only if its loop can still run it: not on
        a closed loop, not already done (a task its runner cancelled), not on a loop that
        nothing can wake (`loops.stalled`)."""
        from leakguard.trackers.tasks import loops as loop_drive  # loaded with asyncio

        key = resource.key
        is_task = callable(getattr(key, "done", None))
        if is_task and key.done():
            return False
        loop = loop_drive.loop_of(key) if is_task else key
        if loop_drive.loop_state(loop) == "closed":
            return False
        return not loop_drive.stalled(loop, horizon)

    def creator_epoch(self, key: TaskKey, handle: TaskHandle) -> int | None:
        from leakguard.trackers.tasks.recording import LoopInfo  # loaded with asyncio

        if isinstance(handle, LoopInfo):
            return handle.epoch
        made = self._watch.tasks.get(key) if self._watch is not None else None
        return made[1] if made is not None else None

    def _by_own_loop(self, tasks: Sequence[Any]) -> list[tuple[Any, list[Any]]]:
        """Tasks grouped by loop, for the loops this thread made (the ones it may run)."""
        loops = self._watch.loops if self._watch is not None else {}
        me = threading.get_ident()
        return [(loop, group) for loop, group in _by_loop(tasks) if _made_by(loops, loop, me)]

    # --- describing ----------------------------------------------------------------------
    def describe(self, key: TaskKey, handle: TaskHandle) -> Resource[TaskKey]:
        from leakguard.trackers.tasks import loops as loop_drive  # loaded with asyncio
        from leakguard.trackers.tasks.recording import LoopInfo, SilentCancel

        if isinstance(handle, LoopInfo):
            return self._describe_loop(key, handle)
        watch = self._watch
        made = watch.tasks.get(key) if watch is not None else None
        origin_raw = made[0] if made is not None else None
        origin = Origin.from_raw(origin_raw) if origin_raw else None
        if watch is not None:
            watch.reported.add(key)
            # A key handed over earlier (e.g. what a fixture owned) may since have been
            # cancelled by its runner: the record made before that describes it.
            silenced = watch.silenced.get(key)
            handle = silenced if silenced is not None else handle
        if isinstance(handle, SilentCancel):
            facts = handle.facts
            notes = [
                f"suspended at {facts.suspended}",
                f"would otherwise have been cancelled silently by {handle.canceller} "
                "(still pending when its event loop was closed)",
            ]
        else:
            facts = facts_of(key)
            notes = [f"suspended at {facts.suspended}"]
            state = loop_drive.loop_state(loop_drive.loop_of(key))
            if state == "closed":
                notes.append("its event loop is closed: it can never run again")
            elif state == "running elsewhere":
                name = loop_drive.thread_name_of(loop_drive.loop_of(key))
                notes.append(f"its event loop is running in thread {name!r}")
        return Resource(
            self.name,
            key,
            "task",
            facts.label,
            detail=f"suspended at {facts.suspended}",
            origin=origin,
            handle=handle if handle is not None else key,
            notes=tuple(notes if origin is not None else notes[1:]),
        )

    def _describe_loop(self, loop: Any, info: LoopInfo) -> Resource[TaskKey]:
        from leakguard.trackers.tasks import loops as loop_drive  # loaded with asyncio

        state = loop_drive.loop_state(loop)
        if state == "running elsewhere":
            detail = f"(running in thread {loop_drive.thread_name_of(loop)!r})"
        else:
            try:
                all_tasks = sys.modules["asyncio"].all_tasks
                count = sum(1 for t in all_tasks(loop) if not t.done())
            except Exception:
                count = 0
            detail = f"({type(loop).__name__}, {count} pending task{'s' if count != 1 else ''})"
        return Resource(
            self.name,
            loop,
            "event loop",
            "left open",
            detail=detail,
            origin=Origin.from_raw(info.origin) if info.origin else None,
            handle=loop,
        )

    def builtin_ignore(self, resource: Resource[TaskKey]) -> str | None:
        if resource.kind != "task":
            return None
        return builtin_reason(resource.label.partition(" coro=")[2])

    # --- after a leak --------------------------------------------------------------------
    def cleanup(self, resources: Sequence[Resource[TaskKey]], timeout: float) -> list[str]:
        from leakguard.trackers.tasks import loops as loop_drive  # loaded with asyncio
        from leakguard.trackers.tasks.recording import SilentCancel

        deadline = time.monotonic() + timeout
        outcomes: dict[int, str] = {}
        live = []
        for i, r in enumerate(resources):
            if isinstance(r.handle, SilentCancel):
                outcomes[i] = self._settle_silenced(r.handle)
            elif r.kind == "task":
                live.append(r.key)
        if live:
            by_task = loop_drive.cancel(live, timeout)
            for i, r in enumerate(resources):
                if r.kind == "task" and i not in outcomes:
                    outcomes[i] = by_task.get(r.key, "task left as is")
        for i, r in enumerate(resources):
            if r.kind == "event loop":
                try:
                    outcomes[i] = loop_drive.close(r.key, max(0.0, deadline - time.monotonic()))
                except Exception as exc:
                    outcomes[i] = f"event loop not closed ({type(exc).__name__}: {exc})"
        return [outcomes.get(i, f"{r.kind} left as is") for i, r in enumerate(resources)]

    def _settle_silenced(self, record: SilentCancel) -> str:
        if self._watch is not None:
            self._watch.silenced.pop(record.task, None)
        if record.task.done():
            return f"task cancelled (by {record.canceller}, as it closed the event loop)"
        return f"task still pending after {record.canceller} cancelled it (it ignored cancellation)"

    def identify(self, obj: object) -> TaskKey | None:
        asyncio = sys.modules.get("asyncio")
        if asyncio is None:  # no task or loop can exist yet
            return None
        if isinstance(obj, (asyncio.Task, asyncio.AbstractEventLoop)):
            return obj
        return None


def _made_by(loops: Mapping[Any, LoopInfo], loop: Any, thread: int) -> bool:
    try:
        info = loops.get(loop)
    except TypeError:  # a loop without weak references: not one we recorded
        return False
    return info is not None and info.thread == thread


def _by_loop(tasks: Sequence[Any]) -> list[tuple[Any, list[Any]]]:
    from leakguard.trackers.tasks import loops as loop_drive  # loaded with asyncio

    groups: dict[int, tuple[Any, list[Any]]] = {}  # by id(): a loop need not be hashable
    for task in tasks:
        loop = loop_drive.loop_of(task)
        groups.setdefault(id(loop), (loop, []))[1].append(task)
    return list(groups.values())

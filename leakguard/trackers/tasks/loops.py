"""Running, cancelling and closing event loops from outside: how leaked tasks get their grace
period on an idle loop, and how cleanup cancels them and closes a loop the test left open."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from leakguard.core.compat import aio
from leakguard.core.grace import settle
from leakguard.core.lineage import stamped
from leakguard.core.parked import library_cache_of
from leakguard.core.stats import waited_elsewhere

LoopState = Literal["closed", "running here", "running elsewhere", "idle"]


def loop_of(task: Any) -> Any:
    try:
        return task.get_loop()
    except Exception:
        return aio.task_loop(task)


def loop_state(loop: Any) -> LoopState:
    try:
        if loop.is_closed():
            return "closed"
        if loop.is_running():
            return "running here" if aio.get_running_loop() is loop else "running elsewhere"
    except Exception:
        return "closed"
    return "idle"


def thread_of(loop: Any) -> threading.Thread | None:
    """The thread running ``loop`` (asyncio records its id while the loop runs)."""
    ident = aio.loop_thread_id(loop)
    if ident is None:
        return None
    for thread in threading.enumerate():
        if thread.ident == ident:
            return thread
    return None


def thread_name_of(loop: Any) -> str | None:
    thread = thread_of(loop)
    if thread is not None:
        return thread.name
    ident = aio.loop_thread_id(loop)
    return None if ident is None else f"ident {ident}"


def stalled(loop: Any, horizon: float) -> bool:
    """Whether nothing can wake a task of ``loop`` within ``horizon`` seconds, so running it
    for the grace period is pure loss: the loop is idle, has no callback ready, no timer due
    before then, watches no descriptor but its own wake-up socket and no signal, and no thread
    started since leakguard began watching is alive to call into it (but for idle workers of
    a library's thread cache: `library_cache_of`).

    Only asyncio's own selector loops can be read so (``_ready``, ``_scheduled``,
    ``_selector``: private, 3.10–3.13); any other loop (uvloop) is never called stalled.
    """
    if loop_state(loop) != "idle":
        return False
    ready = getattr(loop, "_ready", None)
    scheduled = getattr(loop, "_scheduled", None)
    selector = getattr(loop, "_selector", None)
    if ready is None or scheduled is None or selector is None or ready:
        return False
    if getattr(loop, "_signal_handlers", None):
        return False
    try:
        due = loop.time() + horizon
        if any(not h.cancelled() and h.when() <= due for h in list(scheduled)):
            return False
        wake = getattr(loop, "_ssock", None)
        wake_fd = wake.fileno() if wake is not None else -1
        if any(key.fd != wake_fd for key in list(selector.get_map().values())):
            return False
    except Exception:  # not readable as expected: not proven
        return False
    # Another thread could call_soon_threadsafe() into it (an executor finishing a job): only
    # threads that predate the run (pytest's, xdist's) are taken to leave it alone, and a
    # worker a library's cache proves idle (trio's, parked for its next job): it runs nothing
    # until someone hands it a job, and no one left to do so is alive or can run.
    me = threading.get_ident()
    return not any(
        t.ident != me and stamped(t) and library_cache_of(t) is None for t in threading.enumerate()
    )


def drive(loop: Any, tasks: Iterable[Any], timeout: float) -> None:
    """Run an idle loop until ``tasks`` are done or ``timeout`` passes (0: one short turn).

    A loop nobody runs cannot finish anything, however long we sleep: the grace period of a
    task on a module-scoped loop, or on a loop a sync test made, has to be spent running it.
    """
    pending = [t for t in tasks if not t.done()]
    if not pending or loop_state(loop) != "idle":
        return
    # Tasks of a loop may wake each other up, the done callbacks run a turn later: run turns
    # until nothing is left to do now (bounded), or until the timeout.
    start = time.perf_counter()
    with contextlib.suppress(Exception):
        loop.run_until_complete(asyncio.wait(pending, timeout=max(timeout, 0.0)))
    waited_elsewhere(time.perf_counter() - start)


def wait_elsewhere(tasks: Sequence[Any], deadline: float) -> None:
    """Wait for tasks whose loop runs in another thread (``done()`` is safe to read)."""
    settle(
        lambda: any(not t.done() for t in tasks),
        lambda waiting: not waiting,
        deadline - time.monotonic(),
        max_delay=0.05,
    )


def cancel(tasks: Sequence[Any], timeout: float) -> dict[Any, str]:
    """Cancel ``tasks`` (grouped by loop) and let them finish; one outcome per task."""
    deadline = time.monotonic() + timeout
    outcomes: dict[Any, str] = {}
    by_loop: dict[int, tuple[Any, list[Any]]] = {}
    for task in tasks:
        if task.done():
            outcomes[task] = "task finished on its own"
            continue
        loop = loop_of(task)
        by_loop.setdefault(id(loop), (loop, []))[1].append(task)
    for loop, group in by_loop.values():
        state = loop_state(loop)
        if state == "closed":
            for task in group:
                outcomes[task] = "task not cancelled: its event loop is closed, it can never run"
            continue
        for task in group:
            if state == "running elsewhere":
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(task.cancel)
            else:
                with contextlib.suppress(Exception):
                    task.cancel()
        if state == "idle":
            drive(loop, group, max(0.0, deadline - time.monotonic()))
        elif state == "running elsewhere":
            wait_elsewhere(group, deadline)
        for task in group:
            outcomes[task] = outcome_of(task, state)
    return outcomes


def outcome_of(task: Any, state: LoopState) -> str:
    if not task.done():
        if state == "running here":
            return "task cancel requested (its loop is running the check itself)"
        return "task still pending after cancel (it ignored cancellation)"
    if task.cancelled():
        return "task cancelled"
    return "task finished after cancel"


def close(loop: Any, timeout: float) -> str:
    """Close a loop the test left open, after cancelling what still runs on it."""
    state = loop_state(loop)
    if state == "closed":
        return "event loop already closed"
    prefix = "event loop closed"
    if state == "running elsewhere":
        name = thread_name_of(loop)
        stopped = _stop_elsewhere(loop, time.monotonic() + timeout)
        if stopped is not None:
            return stopped
        prefix = f"event loop stopped (it ran in thread {name!r}) and closed"
        state = loop_state(loop)
    if state == "running here":
        return "event loop not closed: it is running the check itself"
    leftovers = [t for t in asyncio.all_tasks(loop) if not t.done()]
    outcomes = cancel(leftovers, timeout) if leftovers else {}
    with contextlib.suppress(Exception):
        loop.run_until_complete(asyncio.wait_for(loop.shutdown_asyncgens(), max(timeout, 0.1)))
    still = [t for t in leftovers if not t.done()]
    _forget_as_current(loop)
    loop.close()
    if still:
        return f"{prefix} with {len(still)} task(s) still pending"
    if outcomes:
        return f"{prefix} after cancelling {len(outcomes)} task(s)"
    return prefix


def _stop_elsewhere(loop: Any, deadline: float) -> str | None:
    """Stop a loop another thread runs; ``None`` when it is ours to close now, else why not."""
    thread = thread_of(loop)
    name = thread.name if thread is not None else "?"
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(loop.stop)
    settle(
        loop.is_running, lambda running: not running, deadline - time.monotonic(), max_delay=0.05
    )
    if thread is not None:
        # Its thread may still do its own cleanup after run_forever() returns: let it.
        thread.join(max(0.0, deadline - time.monotonic()))
    if loop.is_running():
        return f"event loop not closed: it is still running in thread {name!r}"
    if loop.is_closed():
        return f"event loop stopped (its thread {name!r} closed it)"
    if thread is not None and thread.is_alive():
        return f"event loop stopped; not closed: thread {name!r} still holds it"
    return None


def _forget_as_current(loop: Any) -> None:
    """A closed loop must not stay the thread's current loop: the next test would get it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            policy = asyncio.get_event_loop_policy()
            if aio.policy_current_loop(policy) is loop:
                policy.set_event_loop(None)
        except Exception:
            pass

"""Interrupts during a checked test (Ctrl-C, SIGTERM, ``pytest.exit``): the test's processes
are stopped under the usual rules before pytest exits, and the summary says so."""

from __future__ import annotations

import contextlib
import importlib
import signal
import threading
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from leakguard.core.tracker import Conclusion, Phase

if TYPE_CHECKING:
    from types import FrameType

    from leakguard.core.runstate import Run, TestState

INTERRUPTS: tuple[type[BaseException], ...] = (KeyboardInterrupt, pytest.exit.Exception)
"""What pytest treats as "stop the run now": no grace wait, no leak report, only the stop."""

STOP_WAIT = 0.5
"""Seconds between SIGTERM and SIGKILL when stopping a test's processes on an interrupt."""


def _raw_signal() -> ModuleType:
    # ``signal.signal``/``getsignal`` are ``_signal``'s functions plus a conversion of the
    # result to an enum that costs ≈ 10 µs for a Python handler (a ValueError raised and
    # caught); the C module itself (the same functions, CPython 3.10-3.13) costs ≈ 1 µs for
    # arming and restoring. Its handlers are the same objects (SIG_DFL == 0).
    try:
        raw = importlib.import_module("_signal")  # no stubs: it has no public face
    except ImportError:
        return signal
    return raw if hasattr(raw, "getsignal") and hasattr(raw, "signal") else signal


_SIGNAL = _raw_signal()


def stop_processes(run: Run, state: TestState) -> list[Conclusion] | None:
    """Stop the processes ``state``'s test owns (ownership and safety as at its end, but
    with no grace); ``None`` when the test was not checked for processes."""
    settings = state.settings
    tracker = run.engine.tracker("processes") if "processes" in settings.trackers else None
    before = state.before.get("processes")
    if tracker is None or before is None:
        return None
    new = tracker.new_since(before, tracker.snapshot(Phase("after", settings.grace)))
    skip = set(state.exclude.get("processes", ()))
    for record in run.fixtures.values():
        skip.update(record.owned.get("processes", {}))
    rules = (*settings.ignore, *state.rules)
    found: list[Conclusion] = []
    for key, handle in new.items():
        if key in skip:
            continue
        resource = tracker.describe(key, handle)
        if not any(rule.matches(resource) for rule in rules):
            found.append(Conclusion.of(resource))
    if not settings.cleanup:
        outcomes = ["left running (leakguard_cleanup = false)"] * len(found)
    else:
        outcomes = tracker.cleanup([c.resource for c in found], STOP_WAIT)
    for conclusion, outcome in zip(found, outcomes, strict=False):
        conclusion.cleanup = outcome
    return found


class InterruptGuard:
    """Stops the current test's processes when the run is interrupted.

    SIGINT needs nothing installed: Python raises ``KeyboardInterrupt`` and pytest ends the run
    through its hooks. SIGTERM kills pytest outright by default, so a handler is installed, but
    only while a checked test runs that has spawned something (a clean test never pays for
    it), and restored when the test ends. A Python handler that was there is called first; if
    it ends the run (raises), the test's processes are stopped before its exception goes on.
    With no handler before it, SIGTERM becomes ``pytest.exit``, so the run ends the way Ctrl-C
    ends it: fixtures torn down, the summary printed, exit status 2 (interrupted).

    Process-wide by nature, like the signal disposition it manages: the one instance is `GUARD`.
    Runs attach to it in a stack (a pytester run inside a run uses it while it lasts).
    """

    def __init__(self) -> None:
        self._runs: list[tuple[Run, list[str]]] = []
        self._handled: set[int] = set()  # epochs of tests already stopped
        self._previous: Any = None
        self._armed = False
        self._received: str | None = None

    # --- the run ---------------------------------------------------------------------------
    def attach(self, run: Run, notes: list[str]) -> None:
        """``notes``: where the summary lines go (the run's summary notes)."""
        self._runs.append((run, notes))

    def detach(self, run: Run) -> None:
        self.test_ended()
        self._runs = [entry for entry in self._runs if entry[0] is not run]
        self._received = None

    # --- SIGTERM ---------------------------------------------------------------------------
    def spawned(self) -> None:
        """A process was spawned (or seen spawned): arm for SIGTERM if a checked test runs."""
        if self._armed or not self._runs or self._runs[-1][0].current is None:
            return
        if threading.current_thread() is not threading.main_thread():
            return  # signal.signal works on the main thread only: armed at the next check
        previous = _SIGNAL.getsignal(signal.SIGTERM)
        if previous is None or previous == signal.SIG_IGN:
            return  # installed from C (nothing to chain to), or ignored: SIGTERM is not ours
        _SIGNAL.signal(signal.SIGTERM, self._on_sigterm)
        self._previous, self._armed = previous, True

    def test_ended(self) -> None:
        """Restore the SIGTERM handler that was there (unless the test installed its own)."""
        if not self._armed:
            return
        self._armed = False
        with contextlib.suppress(ValueError):  # not on the main thread: leave it
            if _SIGNAL.getsignal(signal.SIGTERM) == self._on_sigterm:
                _SIGNAL.signal(signal.SIGTERM, self._previous)
        self._previous = None

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous
        self._received = "SIGTERM"
        if callable(previous):
            try:
                previous(signum, frame)
            except BaseException:
                self.interrupted("SIGTERM")  # it ends the run: stop the test's processes first
                raise
            self._received = None  # it carried on, and so does the test
            return
        self.test_ended()  # a second SIGTERM meets the old disposition (death) at once
        # Exit status 2 (interrupted), as for Ctrl-C: with any other, pytest skips the summary.
        pytest.exit("leakguard: SIGTERM received during a test", returncode=None)

    # --- stopping --------------------------------------------------------------------------
    def cause_of(self, exc: BaseException | None) -> str:
        if self._received:
            return self._received
        return "SIGINT" if isinstance(exc, KeyboardInterrupt) else "pytest.exit"

    def interrupted(self, cause: str) -> None:
        """The run is being interrupted (pytest's keyboard-interrupt hook, a SIGTERM)."""
        if self._runs:
            state = self._runs[-1][0].current
            if state is not None:
                self.stop(state, cause)
        self.test_ended()

    def stop(self, state: TestState, cause: str) -> None:
        """Stop ``state``'s processes once, and say so in the summary."""
        if not self._runs or state.epoch in self._handled:
            return
        self._handled.add(state.epoch)
        run, notes = self._runs[-1]
        head = f"leakguard: interrupted ({cause}) during {state.nodeid}"
        try:
            stopped = stop_processes(run, state)
        except Exception as exc:  # an interrupt must go on: report, never raise
            notes.append(f"{head}; its processes could not be stopped ({exc!r})")
            return
        if stopped is None:
            return
        if not stopped:
            notes.append(f"{head}; it had no process left running")
            return
        notes.append(f"{head}; stopped what the test had started:")
        notes.extend(f"    {r.kind} {r.label} -> {r.cleanup}" for r in stopped)


GUARD = InterruptGuard()

"""The tracker instances of one engine: made and installed on first use, switched off after a
fault they cannot go on after, and every fault inside them reported once."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from leakguard.core.faults import InternalProblem
from leakguard.core.registry import TrackerRegistry
from leakguard.core.tracker import AnyTracker

SNAPSHOT_FAULTS_TO_DISABLE = 3
"""Consecutive failed snapshots before a tracker is switched off: one bad moment (a weak
dictionary changing size under a gc callback) must not blind it for the rest of the run."""


class Roster:
    """Which trackers run, which were switched off, and what went wrong inside them."""

    def __init__(
        self,
        registry: TrackerRegistry,
        on_problem: Callable[[InternalProblem], None] | None = None,
    ) -> None:
        self._registry = registry
        self._on_problem = on_problem
        self.instances: dict[str, AnyTracker] = {}
        """The installed trackers by name: one dict for the roster's whole life (the engine
        reads it on the clean path without a call)."""
        self.problems: dict[str, InternalProblem] = {}
        self.disabled: set[str] = set()
        self.snapshot_faults: dict[str, int] = {}
        """Per tracker, its failed snapshots in a row (a good `Engine.snapshot` forgets them)."""
        self.during = ""
        """What is being checked now (a test id), named in internal problems."""

    def tracker(self, name: str) -> AnyTracker | None:
        """The installed tracker ``name``, made and installed now if need be."""
        if name in self.disabled:
            return None
        tracker = self.instances.get(name)
        if tracker is None:
            try:
                tracker = self._registry.create(name)
                tracker.install()
            except Exception as exc:
                self.fail(name, "install", exc)
                return None
            self.instances[name] = tracker
        return tracker

    def close(self) -> None:
        for name, tracker in list(self.instances.items()):
            try:
                tracker.uninstall()
            except Exception as exc:
                self.fail(name, "uninstall", exc)
        self.instances.clear()

    def snapshot_fault(self, name: str, exc: BaseException) -> None:
        count = self.snapshot_faults[name] = self.snapshot_faults.get(name, 0) + 1
        if count >= SNAPSHOT_FAULTS_TO_DISABLE:
            self.fail(name, "snapshot", exc)
        else:
            self.report_fault(name, "snapshot", exc)

    def fail(self, name: str, phase: str, exc: BaseException) -> None:
        """A fault the tracker cannot go on after: disable it and say from where it is blind."""
        self.report_fault(name, phase, exc, disabled=True)
        self.disabled.add(name)
        tracker = self.instances.pop(name, None)
        if tracker is not None and phase != "uninstall":
            # Its patches and hooks must not stay in place for the rest of the run.
            with contextlib.suppress(Exception):
                tracker.uninstall()

    def report_fault(
        self, name: str, phase: str, exc: BaseException, disabled: bool = False
    ) -> None:
        key = f"{name}/{phase}/{disabled}"
        if key in self.problems:
            return
        problem = InternalProblem.of(exc, phase, name, during=self.during, disabled=disabled)
        self.problems[key] = problem
        if self._on_problem is not None:
            self._on_problem(problem)

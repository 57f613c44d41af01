"""Which trackers exist: the built-ins, the ``leakguard.trackers`` entry points, and the ones a
conftest or plugin registers through the ``pytest_leakguard_register_trackers`` hook."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from leakguard.core.tracker import AnyTracker, Tracker

TrackerFactory = Callable[[], AnyTracker]

ENTRY_POINT_GROUP = "leakguard.trackers"
BUILTIN: dict[str, str] = {
    "threads": "leakguard.trackers.threads.tracker:ThreadTracker",
    "tasks": "leakguard.trackers.tasks.tracker:TaskTracker",
    "processes": "leakguard.trackers.processes.tracker:ProcessTracker",
    "sockets": "leakguard.trackers.descriptors.sockets:SocketTracker",
    "ports": "leakguard.trackers.descriptors.ports:PortTracker",
    "fds": "leakguard.trackers.descriptors.fds:FdTracker",
}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


class TrackerRegistry:
    """Maps tracker names to factories; loading is lazy so unused trackers cost nothing."""

    def __init__(self) -> None:
        self._factories: dict[str, TrackerFactory | str | Any] = dict(BUILTIN)

    @classmethod
    def default(cls) -> TrackerRegistry:
        """Built-ins plus every installed ``leakguard.trackers`` entry point."""
        registry = cls()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            registry._factories[ep.name] = ep
        return registry

    def register(self, factory: TrackerFactory, name: str | None = None) -> None:
        """Add a tracker; ``factory`` is a `Tracker` subclass or any callable returning one."""
        tracker_name = name or getattr(factory, "name", "")
        if not isinstance(tracker_name, str) or not _NAME.match(tracker_name):
            raise ValueError(
                f"a tracker needs a name of letters, digits, '_', '-', '.': got {tracker_name!r}"
            )
        self._factories[tracker_name] = factory

    def names(self) -> list[str]:
        return list(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def create(self, name: str) -> AnyTracker:
        factory = self._factories[name]
        if isinstance(factory, str):
            module_name, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module_name), attr)
        elif hasattr(factory, "load") and hasattr(factory, "group"):  # an entry point
            factory = factory.load()
        tracker: object = factory()
        if not isinstance(tracker, Tracker):
            raise TypeError(f"tracker {name!r}: {factory!r} did not return a leakguard.Tracker")
        if not tracker.name:
            tracker.name = name  # type: ignore[misc]  # instance override of the ClassVar default
        return tracker

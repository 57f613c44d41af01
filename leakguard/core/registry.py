"""Which trackers exist: the built-ins, the ``leakguard.trackers`` entry points, and the ones a
conftest or plugin registers through the ``pytest_leakguard_register_trackers`` hook."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leakguard.core.tracker import AnyTracker

TrackerFactory = Callable[[], "AnyTracker"]

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
        self._entry_points_read = True
        self._registered: set[str] = set()

    @classmethod
    def default(cls) -> TrackerRegistry:
        """Built-ins plus every installed ``leakguard.trackers`` entry point.

        The entry points are read when a name that is not a built-in is first looked up or
        the names are listed: reading every installed package's metadata costs ≈ 2 ms (more in
        a big environment) of every run's start-up, and most runs name built-ins only. So an
        entry point cannot replace a built-in of the same name (a registration through
        ``pytest_leakguard_register_trackers`` can).
        """
        registry = cls()
        registry._entry_points_read = False
        return registry

    def _read_entry_points(self) -> None:
        if self._entry_points_read:
            return
        self._entry_points_read = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            # As if read first: a registration replaces an entry point of the same name.
            if ep.name not in BUILTIN and ep.name not in self._registered:
                self._factories[ep.name] = ep

    def register(self, factory: TrackerFactory, name: str | None = None) -> None:
        """Add a tracker; ``factory`` is a `Tracker` subclass or any callable returning one."""
        tracker_name = name or getattr(factory, "name", "")
        if not isinstance(tracker_name, str) or not _NAME.match(tracker_name):
            raise ValueError(
                f"a tracker needs a name of letters, digits, '_', '-', '.': got {tracker_name!r}"
            )
        self._factories[tracker_name] = factory
        self._registered.add(tracker_name)

    def names(self) -> Collection[str]:
        """Every tracker name; built-ins answer ``in`` without reading the entry points."""
        return _Names(self)

    def __contains__(self, name: object) -> bool:
        if name in self._factories:
            return True
        self._read_entry_points()
        return name in self._factories

    def create(self, name: str) -> AnyTracker:
        if name not in self._factories:
            self._read_entry_points()
        factory = self._factories[name]
        if isinstance(factory, str):
            module_name, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module_name), attr)
        elif hasattr(factory, "load") and hasattr(factory, "group"):  # an entry point
            factory = factory.load()
        from leakguard.core.tracker import Tracker  # with the first tracker, not at start-up

        tracker: object = factory()
        if not isinstance(tracker, Tracker):
            raise TypeError(f"tracker {name!r}: {factory!r} did not return a leakguard.Tracker")
        if not tracker.name:
            tracker.name = name  # type: ignore[misc]  # instance override of the ClassVar default
        return tracker


class _Names(Collection[str]):
    """The registry's tracker names, as a collection that reads the entry points only when a
    name outside the built-ins is asked for, or when it is listed (an error message)."""

    def __init__(self, registry: TrackerRegistry) -> None:
        self._registry = registry

    def __contains__(self, name: object) -> bool:
        return name in self._registry

    def _all(self) -> list[str]:
        self._registry._read_entry_points()
        return list(self._registry._factories)

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

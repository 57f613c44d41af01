"""Run a function right after a module's first import: hooks for a library a run may never use.

The ``tasks`` tracker hooks asyncio's loops and tasks, but importing asyncio (with ``ssl``) is
≈ 15 ms of start-up, which a suite that never uses asyncio paid on every run. Now its hooks wait
for asyncio: `when_imported` calls back at once when the module is loaded already, else right
after the first import finishes executing the module (before the importer gets it back, so no
loop or task can be made unseen).

A finder at the front of ``sys.meta_path`` answers only for the awaited names: it asks the
finders behind it for the spec and wraps the spec's loader so that executing the module is
followed by the callbacks; the module's ``__loader__`` is the original again afterwards. It
leaves ``sys.meta_path`` once nothing is awaited.
"""

from __future__ import annotations

import importlib.machinery
import sys
import threading
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any


class Awaited:
    """A pending call for one module: `cancel` it, or read `error` once it ran and raised."""

    __slots__ = ("callback", "claimed", "error", "name")

    def __init__(self, name: str, callback: Callable[[], None]) -> None:
        self.name = name
        self.callback = callback
        self.claimed = False  # set under the finder's lock by whoever runs it: it runs once
        self.error: BaseException | None = None
        """What the callback raised: kept for its owner to report, never raised into the
        user's import."""

    def run(self) -> None:
        try:
            self.callback()
        except Exception as exc:
            self.error = exc

    def raise_error(self) -> None:
        """Raise what the callback raised, once: for its owner to raise where leakguard reports
        its own faults (a tracker's snapshot), never in the importer."""
        error, self.error = self.error, None
        if error is not None:
            raise error

    def cancel(self) -> bool:
        """Drop the call; True if it had not run (nothing of it to undo)."""
        return _FINDER.forget(self)


class _AfterImport:
    """The meta path finder (by protocol) for the awaited names."""

    def __init__(self) -> None:
        self.awaited: dict[str, list[Awaited]] = {}
        self.lock = threading.Lock()

    def add(self, awaited: Awaited) -> None:
        with self.lock:
            self.awaited.setdefault(awaited.name, []).append(awaited)
            if self not in sys.meta_path:
                sys.meta_path.insert(0, self)

    def forget(self, awaited: Awaited) -> bool:
        """Drop it from the waiting; True if the caller now owns running it."""
        with self.lock:
            waiting = self.awaited.get(awaited.name, [])
            if awaited in waiting:
                waiting.remove(awaited)
            if not waiting:
                self.awaited.pop(awaited.name, None)
            self._leave_if_idle()
            mine, awaited.claimed = not awaited.claimed, True
            return mine

    def _leave_if_idle(self) -> None:
        if not self.awaited and self in sys.meta_path:
            sys.meta_path.remove(self)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.awaited:
            return None
        spec: importlib.machinery.ModuleSpec | None = None
        for finder in list(sys.meta_path):
            find_spec = getattr(finder, "find_spec", None)
            if finder is not self and find_spec is not None:
                spec = find_spec(fullname, path, target)
                if spec is not None:
                    break
        if spec is None:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec  # nothing to follow: the awaiting side checks ``sys.modules`` itself
        spec.loader = _ThenCall(loader, self)  # type: ignore[assignment]  # a loader by protocol
        return spec

    def fire(self, name: str) -> None:
        with self.lock:
            due = [a for a in self.awaited.pop(name, []) if not a.claimed]
            for awaited in due:
                awaited.claimed = True
            self._leave_if_idle()
        for awaited in due:
            awaited.run()


class _ThenCall:
    """A loader that executes the module with the original loader, then runs the callbacks."""

    def __init__(self, original: Any, finder: _AfterImport) -> None:
        self.original = original
        self.finder = finder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        create = getattr(self.original, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        try:
            self.original.exec_module(module)
        finally:
            # The module's own loader again, for whatever reads it later (``inspect``, reload).
            if getattr(module, "__loader__", None) is self:
                module.__loader__ = self.original
            spec = getattr(module, "__spec__", None)
            if spec is not None and spec.loader is self:
                spec.loader = self.original
        self.finder.fire(module.__name__)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, is_package …
        return getattr(self.original, name)


_FINDER = _AfterImport()


def when_imported(name: str, callback: Callable[[], None]) -> Awaited:
    """Call ``callback()`` once ``name`` is imported: now if it is (in this thread), else right
    after its import executes it (in the importing thread). What it raises is kept in
    `Awaited.error`."""
    awaited = Awaited(name, callback)
    if name in sys.modules:
        awaited.claimed = True
        awaited.run()
        return awaited
    _FINDER.add(awaited)
    # Imported meanwhile by another thread, before the finder was in place: run it here,
    # unless the import's own call got to it first.
    if name in sys.modules and _FINDER.forget(awaited):
        awaited.run()
    return awaited

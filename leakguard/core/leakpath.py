"""The leak path's modules: run when a check first finds something new, not at start-up.

A run whose tests leak nothing never needs them: describing, the owner and holder searches, the
garbage sort, cleanup, the report. Imported at start-up they were ≈ 10 ms of every checked run,
which everyone who runs one test from an editor pays.

Imported on the leak path instead, they would meet the very state a leak can leave behind: a
test that used up every descriptor (EMFILE), while an import opens its file. So `prepare` reads
their compiled code when the trackers are created (≈ 0.1 ms a module; running a module's body
is what costs), and `load` runs that code through a finder put in front of the import system for
the moment: nothing is opened on the leak path. The standard-library modules they import are
imported by `prepare`, for the same reason (``fcntl`` is a shared library on disk).

The leak path imports these modules inside its functions, after `load`; a test
(``tests/test_lazy_imports.py``) checks that every such import in leakguard is listed here, and
that every module listed imports nothing outside `STDLIB` and leakguard.
"""

from __future__ import annotations

import gc
import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Sequence
from types import CodeType, ModuleType

from leakguard.core import records

CORE: tuple[str, ...] = (
    "leakguard.core.report",
    "leakguard.trackers.threads.owners",
    "leakguard.core.aftermath",
    "leakguard.core.residue",
    "leakguard.core.conclude",
    "leakguard.core.grace",
    "leakguard.core.parked",
    "leakguard.core.garbage",
    "leakguard.core.polling",
    "leakguard.core.holders",
    "leakguard.core.keepers",
    "leakguard.core.cleanup",
    "leakguard.core.polluters",
)
"""What every leak path needs, whichever trackers run."""

WHEN_LOADED: dict[str, tuple[str, ...]] = {
    "leakguard.plugin.checking": ("leakguard.plugin.reproduce",),
    "leakguard.trackers.descriptors.base": (
        "leakguard.trackers.descriptors.describe",
        "leakguard.trackers.descriptors.owners",
        "leakguard.trackers.descriptors.found",
        "leakguard.trackers.descriptors.cleanup",
    ),
}
"""What the leak path adds once a module (the key) is loaded: the pytest plugin's (a plain
``leakguard.check()`` has no pytest run to name), a built-in tracker's."""

MODULES: tuple[str, ...] = CORE + tuple(m for ms in WHEN_LOADED.values() for m in ms)
"""Every module only the leak path uses."""

DEPS: tuple[str, ...] = ("leakguard.core.compat.aio", "leakguard.core.afterimport")
"""Modules of leakguard those import that a run may not have loaded (another tracker's)."""

STDLIB: tuple[str, ...] = (
    "_io", "collections", "contextlib", "dataclasses", "fcntl", "functools", "gc", "re",
    "select", "shlex", "socket", "stat", "struct", "time", "types", "typing",
    "weakref",
)  # fmt: skip
"""The other modules those import (``os``, ``sys``, ``threading`` and pytest are loaded)."""

_code: dict[str, tuple[importlib.machinery.ModuleSpec, CodeType]] = {}
_pending: list[str] = []
_lock = threading.Lock()


def prepare() -> None:
    """Read the code of the leak path's modules that the trackers created so far need.

    Called when a tracker is created; cheap when there is nothing new to read.
    """
    wanted = [*CORE]
    for module, extra in WHEN_LOADED.items():
        if module in sys.modules:
            wanted += extra
    fresh = [m for m in wanted if m not in _code and m not in sys.modules]
    if not fresh:
        return
    with _lock:
        for name in (*STDLIB, *DEPS):
            importlib.import_module(name)
        for name in fresh:
            _code[name] = _read(name)
            _pending.append(name)


def load() -> None:
    """Run the prepared modules that are not loaded yet (a list test once they all are).

    With the garbage collector paused (see `collector_paused`).
    """
    records.complete()  # the leak path's records: made here (collector paused), not mid-describe
    if not _pending:
        return
    with _lock, CollectorPause():
        finder = _PreparedCode()
        sys.meta_path.insert(0, finder)
        try:
            for name in list(_pending):
                importlib.import_module(name)
                _pending.remove(name)
        finally:
            sys.meta_path.remove(finder)


class CollectorPause:
    """No automatic collection until `resume` (or the end of the ``with``).

    Running module bodies allocates enough to set off one, whose finalizers would close the
    test's garbage (an unclosed selector in a cycle) before the leak path first looked: it
    would never be reported. Nests: only the outermost pause resumes collecting.
    """

    def __init__(self, was_enabled: bool | None = None) -> None:
        self._given = was_enabled
        """Whether collecting was on before a caller already paused it (and hands the pause
        on): `resume` then turns it back on."""
        self._was_enabled = False

    def __enter__(self) -> CollectorPause:
        self._was_enabled = gc.isenabled() if self._given is None else self._given
        gc.disable()
        return self

    def resume(self) -> None:
        if self._was_enabled:
            self._was_enabled = False
            gc.enable()

    def __exit__(self, *exc: object) -> None:
        self.resume()


def _read(name: str) -> tuple[importlib.machinery.ModuleSpec, CodeType]:
    """The module's spec and compiled code, found through its package's path: straight from
    the file system, past other finders (pytest's assertion rewriter claims plugin modules)."""
    parent = importlib.import_module(name.rpartition(".")[0])
    spec = importlib.machinery.PathFinder.find_spec(name, parent.__path__)
    loader = spec.loader if spec is not None else None
    get_code = getattr(loader, "get_code", None)
    code = get_code(name) if get_code is not None else None
    if spec is None or code is None:
        raise ImportError(f"leakguard cannot read its own module {name}")
    return spec, code


class _PreparedCode:
    """Finds the prepared modules and runs their code: the import system does the rest (locks,
    ``sys.modules``, the package attribute) as for any module.

    A meta path finder and loader by protocol, without the ABCs: ``importlib.abc`` pulls in
    ``importlib.resources`` (≈ 1.3 ms at start-up).
    """

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        found = _code.get(fullname)
        if found is None:
            return None
        spec = found[0]
        return importlib.util.spec_from_file_location(
            fullname,
            spec.origin,
            # A loader by protocol (create_module, exec_module); typeshed's LoaderProtocol
            # asks for the deprecated load_module.
            loader=self,  # type: ignore[arg-type]
            submodule_search_locations=spec.submodule_search_locations,
        )

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        exec(_code[module.__name__][1], module.__dict__)

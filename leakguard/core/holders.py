"""Who keeps a leaked object alive: a bounded walk up the referrer graph, on the leak path only.

A thread, socket or file still reachable from a *library's* module-level state (the standard
library or an installed package: trio's worker-thread cache, an HTTP client's default pool,
multiprocessing's heap) is that library's process-wide cache, not the test's leak. The same
object kept by the *user's* module globals (a test module's ``KEEP`` list, an app's module-level
pool under the rootdir) is the classic real leak, and stays one.

The walk asks the collector for the referrers of the whole frontier at once (one heap traversal
per level, for every leak of a test together), stops at module dictionaries and classes, and
never goes through frames, threading's own registries, or leakguard's and pytest's objects (they
hold everything the test made). It is bounded in depth, breadth and time: when it runs out, the
answer is "unknown" and the resource stays a leak.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from leakguard.core import compat
from leakguard.core.origin import PACKAGE_PREFIXES, STDLIB_PREFIXES

MAX_DEPTH = 8
"""Levels of referrers (one heap traversal each, ≈ 10 ms per 100,000 objects): the bound that
decides, so the answer does not depend on how loaded the machine is."""
MAX_FRONTIER = 4000
TIME_BUDGET = 2.0
"""A last-resort cap in seconds for one search (a test's leaks are searched together, once)."""

# Whose module state is never a library cache: they hold what the test made for their own
# bookkeeping (reports, fixtures' values, snapshots).
_NOT_CACHES = ("leakguard", "_pytest", "pytest", "pluggy", "xdist", "execnet", "py")


@dataclass(frozen=True)
class Holder:
    """What keeps an object alive: a module's globals or a class's attributes."""

    name: str
    """``package.module`` or ``package.module.Class``."""
    library: bool
    """True for the standard library and installed packages; False for the user's own code."""
    test_code: bool = False
    """The user's test code (a test module or a conftest): what it keeps is the test's own
    doing. Otherwise the user's application code: its module state outlives any one test."""
    module: bool = False
    """A loaded module's globals (not a class): what it keeps is reachable for as long as the
    module is loaded, so no garbage collection can free it."""


def find_holders(
    targets: Sequence[object], root: str | None, *, budget: float = TIME_BUDGET
) -> list[Holder | None]:
    """For each of ``targets``, the module-level holder that keeps it, if one is found.

    The nearest holder wins; at the same distance, a user holder wins over a library one (a
    test's own global list is a leak, whatever else also holds the object). Never raises: a
    fault in the walk ends it with "unknown".
    """
    found: list[Holder | None] = [None] * len(targets)
    if not targets:
        return found
    # A fault ends the walk with "unknown": the resources stay leaks, which is the safe answer.
    with contextlib.suppress(Exception):
        _walk(targets, found, _Classifier(root), time.monotonic() + budget)
    return found


class _Classifier:
    """Tells module dictionaries and classes apart from plain containers, and whose they are."""

    def __init__(self, root: str | None) -> None:
        self.root = os.path.realpath(root) + os.sep if root else None
        self.module_dicts: dict[int, str] = {}
        for name, module in list(sys.modules.items()):
            namespace = getattr(module, "__dict__", None)
            if isinstance(namespace, dict):
                self.module_dicts[id(namespace)] = name
        self.dead_ends: set[int] = {id(obj) for obj in compat.thread_registries()}
        self.dead_ends.add(id(sys.modules))
        self._library: dict[str, bool] = {}

    def is_library(self, module_name: str) -> bool:
        known = self._library.get(module_name)
        if known is None:
            known = self._library[module_name] = _is_library(module_name, self.root)
        return known

    def holder(self, obj: object) -> Holder | None:
        """The holder ``obj`` is (a module's globals or a class), else ``None``."""
        module: str | None = self.module_dicts.get(id(obj)) if type(obj) is dict else None
        name = module
        if module is None and isinstance(obj, type):
            module = obj.__module__
            name = f"{module}.{obj.__qualname__}"
        if name is None or module is None:
            return None
        top = module.partition(".")[0]
        if top in _NOT_CACHES:
            return _NOT_A_CACHE
        library = self.is_library(module)
        return Holder(
            name, library, test_code=not library and _is_test_code(module), module=name == module
        )

    def passes(self, obj: object) -> bool:
        """Whether the walk may go on upward through ``obj``."""
        if id(obj) in self.dead_ends or isinstance(obj, types.FrameType):
            return False
        module = getattr(type(obj), "__module__", "") or ""
        return module.partition(".")[0] not in _NOT_CACHES


_NOT_A_CACHE = Holder("", library=False)
"""Marks a path that ends in leakguard's or pytest's own state: neither a cache nor the user's."""


def _walk(
    targets: Sequence[object], found: list[Holder | None], cls: _Classifier, deadline: float
) -> None:
    # frontier: id(object) -> (object, indexes of the targets it leads to). One object may be
    # the owner of several leaks (an arena's file and its mmap's copy): it leads to all of them.
    frontier: dict[int, tuple[object, set[int]]] = {}
    for index, target in enumerate(targets):
        frontier.setdefault(id(target), (target, set()))[1].add(index)
    seen: set[int] = set(frontier)
    seen.update((id(frontier), id(targets), id(found)))
    settled: set[int] = set()
    for _ in range(MAX_DEPTH):
        if not frontier or time.monotonic() > deadline:
            return
        # The walk's own containers refer to the frontier too: its entries, the argument tuple
        # of the call below (3.13 lists it; older versions list a copy made from a list).
        # Followed, they made every walk that finds no holder run to the depth bound.
        seen.update(id(entry) for entry in frontier.values())
        objects = tuple(obj for obj, _ in frontier.values())
        referrers = gc.get_referrers(*objects)
        seen.add(id(objects))
        seen.add(id(referrers))
        upward: dict[int, tuple[object, set[int]]] = {}
        for referrer in referrers:
            rid = id(referrer)
            if rid in seen and rid not in cls.module_dicts:
                continue
            leads = _leads(referrer, frontier)
            if not leads:
                continue
            holder = cls.holder(referrer)
            if holder is not None:
                _settle(found, leads, holder, settled)
                continue
            if rid in seen or not cls.passes(referrer):
                continue
            seen.add(rid)
            upward[rid] = (referrer, leads)
            if len(upward) >= MAX_FRONTIER:
                break
        del referrers, objects
        settled.update(i for i, holder in enumerate(found) if holder is not None)
        if len(settled) == len(found):
            return
        frontier = {k: v for k, v in upward.items() if not v[1] <= settled}
    return


def _leads(referrer: object, frontier: dict[int, tuple[object, set[int]]]) -> set[int]:
    """The targets that ``referrer`` leads to: through which frontier objects it refers to."""
    leads: set[int] = set()
    for referent in _referents(referrer):
        entry = frontier.get(id(referent))
        if entry is not None:
            leads |= entry[1]
    return leads


def _referents(obj: object) -> Iterable[object]:
    try:
        return gc.get_referents(obj)
    except Exception:
        return ()


def _settle(found: list[Holder | None], leads: set[int], holder: Holder, settled: set[int]) -> None:
    # The nearest holder decides (the walk is breadth-first); on one level, the user's own
    # global wins over a library's: that is the real leak.
    for index in leads - settled:
        current = found[index]
        if holder is _NOT_A_CACHE:
            continue
        if current is None or (current.library and not holder.library):
            found[index] = holder


_LIBRARY_PREFIXES = STDLIB_PREFIXES + PACKAGE_PREFIXES


def _is_test_code(module_name: str) -> bool:
    """A test module or a conftest, by pytest's default file names."""
    filename = getattr(sys.modules.get(module_name), "__file__", None) or ""
    base = os.path.basename(filename)
    return base == "conftest.py" or base.startswith("test_") or base.endswith("_test.py")


def _is_library(module_name: str, root: str | None) -> bool:
    """Standard library or installed package, as opposed to the user's code under the rootdir."""
    module = sys.modules.get(module_name)
    filename = getattr(module, "__file__", None)
    if not isinstance(filename, str) or not filename:
        return True  # built-in modules (sys, _thread, ...) are the interpreter's
    real = os.path.realpath(filename)
    if "site-packages" in real or "dist-packages" in real:
        return True
    if root is not None and real.startswith(root):
        return False
    return bool(real.startswith(_LIBRARY_PREFIXES))

"""leakguard: catch the tests that leak threads, tasks, processes, sockets, ports and fds."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leakguard.core.check import check
    from leakguard.core.origin import Origin
    from leakguard.core.registry import TrackerRegistry
    from leakguard.core.settings import Settings
    from leakguard.core.tracker import Conclusion, Key, Phase, Resource, Tracker, created_here
    from leakguard.errors import LeakError, LeakguardInternalWarning, LeakWarning
    from leakguard.servers import (
        PortStillInUse,
        ServerDied,
        ServerError,
        ServerProcess,
        ServerStartTimeout,
        free_port,
    )

# Imported on first use (PEP 562): pytest loads this package for every run of every project that
# has leakguard installed, used or not, and the whole public surface costs ≈ 60 ms to import.
_WHERE = {
    "check": "leakguard.core.check",
    "LeakError": "leakguard.errors",
    "LeakWarning": "leakguard.errors",
    "LeakguardInternalWarning": "leakguard.errors",
    "Origin": "leakguard.core.origin",
    "TrackerRegistry": "leakguard.core.registry",
    "PortStillInUse": "leakguard.servers",
    "ServerDied": "leakguard.servers",
    "ServerError": "leakguard.servers",
    "ServerProcess": "leakguard.servers",
    "ServerStartTimeout": "leakguard.servers",
    "free_port": "leakguard.servers",
    "Settings": "leakguard.core.settings",
    "Conclusion": "leakguard.core.tracker",
    "Key": "leakguard.core.tracker",
    "Phase": "leakguard.core.tracker",
    "created_here": "leakguard.core.tracker",
    "Resource": "leakguard.core.tracker",
    "Tracker": "leakguard.core.tracker",
}

__all__ = [
    "Conclusion",
    "Key",
    "LeakError",
    "LeakWarning",
    "LeakguardInternalWarning",
    "Origin",
    "Phase",
    "PortStillInUse",
    "Resource",
    "ServerDied",
    "ServerError",
    "ServerProcess",
    "ServerStartTimeout",
    "Settings",
    "Tracker",
    "TrackerRegistry",
    "check",
    "created_here",
    "free_port",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'leakguard' has no attribute {name!r}")
    if module not in sys.modules:
        forget_unloaded_modules()
    # Not cached here: a pytester in-process run unloads what it imported, and a cached class
    # would outlive its module (``isinstance`` against the next run's copy would fail).
    value = getattr(importlib.import_module(module), name)
    if isinstance(value, type):  # a record handed out is a dataclass already (`core.records`)
        importlib.import_module("leakguard.core.records").complete()
    return value


def forget_unloaded_modules() -> None:
    """Drop package attributes that point at leakguard modules no longer loaded.

    pytester's in-process runs restore ``sys.modules`` after each run, but not the attributes
    the import system set on packages that stay loaded: ``from leakguard.core import lineage``
    would then pick up the last run's copy while ``from leakguard.core.lineage import LINEAGE``
    loads a new one. Two copies of the lineage split "whose thread is this" in two, and leaks
    went unseen. Run before leakguard imports its machinery (a run's configure, a first use).
    """
    for name, package in list(sys.modules.items()):
        if name.startswith("leakguard") and hasattr(package, "__path__"):
            for attr, value in list(vars(package).items()):
                if isinstance(value, ModuleType) and sys.modules.get(value.__name__) is not value:
                    delattr(package, attr)

"""leakguard: catch the tests that leak threads, tasks, processes, sockets, ports and fds."""

from __future__ import annotations

import importlib
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
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

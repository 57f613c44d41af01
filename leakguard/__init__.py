"""leakguard: catch the tests that leak threads, tasks, processes, sockets, ports and fds."""

from __future__ import annotations

from leakguard.context import check
from leakguard.errors import LeakError, LeakguardInternalWarning, LeakWarning
from leakguard.origin import Origin
from leakguard.registry import TrackerRegistry
from leakguard.servers import (
    PortStillInUse,
    ServerDied,
    ServerError,
    ServerProcess,
    ServerStartTimeout,
    free_port,
)
from leakguard.settings import Settings
from leakguard.tracker import Key, Resource, Tracker

__all__ = [
    "Key",
    "LeakError",
    "LeakWarning",
    "LeakguardInternalWarning",
    "Origin",
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
    "free_port",
]

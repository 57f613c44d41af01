"""Servers in tests: free ports that do not collide, and server processes that stop completely."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from leakguard.servers.errors import (
        PortStillInUse,
        ServerDied,
        ServerError,
        ServerRestartedWarning,
        ServerStartTimeout,
        StaleServerWarning,
    )
    from leakguard.servers.fixtures import watch_server
    from leakguard.servers.ports import free_port, port_is_free, wait_port_free
    from leakguard.servers.process import ServerProcess
    from leakguard.servers.records import sweep as stop_stale_servers

# Imported on first use (PEP 562): the plugin module that brings the fixtures lives in this
# package, and a run that never starts a server must not pay ≈ 30 ms of imports for it.
_WHERE = {
    "PortStillInUse": ("leakguard.servers.errors", "PortStillInUse"),
    "ServerDied": ("leakguard.servers.errors", "ServerDied"),
    "ServerError": ("leakguard.servers.errors", "ServerError"),
    "ServerRestartedWarning": ("leakguard.servers.errors", "ServerRestartedWarning"),
    "ServerStartTimeout": ("leakguard.servers.errors", "ServerStartTimeout"),
    "StaleServerWarning": ("leakguard.servers.errors", "StaleServerWarning"),
    "watch_server": ("leakguard.servers.fixtures", "watch_server"),
    "free_port": ("leakguard.servers.ports", "free_port"),
    "port_is_free": ("leakguard.servers.ports", "port_is_free"),
    "wait_port_free": ("leakguard.servers.ports", "wait_port_free"),
    "ServerProcess": ("leakguard.servers.process", "ServerProcess"),
    "stop_stale_servers": ("leakguard.servers.records", "sweep"),
}

__all__ = [
    "PortStillInUse",
    "ServerDied",
    "ServerError",
    "ServerProcess",
    "ServerRestartedWarning",
    "ServerStartTimeout",
    "StaleServerWarning",
    "free_port",
    "port_is_free",
    "stop_stale_servers",
    "wait_port_free",
    "watch_server",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'leakguard.servers' has no attribute {name!r}")
    value = getattr(importlib.import_module(where[0]), where[1])
    globals()[name] = value
    return value

"""Servers in tests: free ports that do not collide, and server processes that stop completely."""

from __future__ import annotations

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

"""The exceptions and warnings the server helpers raise; each message is built here, once."""

from __future__ import annotations

import re

import pytest

# What a server prints when its bind fails: Python, Go, Node and most C servers say one of these.
_ADDRESS_IN_USE = re.compile(r"address already in use|EADDRINUSE|\[Errno 98\]", re.IGNORECASE)


class ServerError(Exception):
    """A server started by leakguard could not be started, kept up or stopped cleanly."""


class ServerDied(ServerError):
    """The server process exited: before it was ready, or while tests were using it."""

    def __init__(self, name: str, exit_code: int | None, log_tail: str, when: str) -> None:
        self.name = name
        self.exit_code = exit_code
        self.log_tail = log_tail
        super().__init__(
            f"server {name!r} exited {when} (exit {exit_code}){bind_hint(log_tail)}"
            f"{format_tail(log_tail)}"
        )


class ServerStartTimeout(ServerError):
    """The server was still running but not ready when the startup timeout passed."""

    def __init__(
        self, name: str, timeout: float, probe: str, last_error: str, log_tail: str
    ) -> None:
        self.name = name
        self.log_tail = log_tail
        why = f"; last probe: {last_error}" if last_error else ""
        super().__init__(
            f"server {name!r} was not ready after {timeout:g} s ({probe}{why})"
            f"{format_tail(log_tail)}"
        )


class PortStillInUse(ServerError):
    """The server's port could not be bound again after the server was stopped."""

    def __init__(self, name: str, port: int, waited: float, holders: str) -> None:
        self.port = port
        super().__init__(
            f"port {port} was still in use {waited:g} s after server {name!r} stopped"
            f"{holders}; leakguard does not kill processes it did not start"
        )


class ServerRestartedWarning(pytest.PytestWarning):
    """A long-lived server died between tests and leakguard restarted it."""


class StaleServerWarning(pytest.PytestWarning):
    """leakguard stopped a server that an earlier, now dead, run had started and left running."""


def bind_hint(tail: str) -> str:
    # free_port() leaves its port in TIME_WAIT on purpose; only SO_REUSEADDR binds over that.
    if not _ADDRESS_IN_USE.search(tail):
        return ""
    return (
        '; its log says "address already in use": a port from free_port() stays in TIME_WAIT '
        "for about a minute, so bind with SO_REUSEADDR or take the port with "
        "free_port(time_wait=False)"
    )


def format_tail(tail: str) -> str:
    if not tail.strip():
        return "; its log is empty"
    lines = "\n".join(f"    {line}" for line in tail.rstrip("\n").splitlines())
    return f"; last lines of its log:\n{lines}"

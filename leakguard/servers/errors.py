"""The exceptions and warning the server helpers raise; each message is built here, once."""

from __future__ import annotations

import pytest


class ServerError(Exception):
    """A server started by leakguard could not be started, kept up or stopped cleanly."""


class ServerDied(ServerError):
    """The server process exited: before it was ready, or while tests were using it."""

    def __init__(self, name: str, exit_code: int | None, log_tail: str, when: str) -> None:
        self.name = name
        self.exit_code = exit_code
        self.log_tail = log_tail
        super().__init__(f"server {name!r} exited {when} (exit {exit_code}){format_tail(log_tail)}")


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


def format_tail(tail: str) -> str:
    if not tail.strip():
        return "; its log is empty"
    lines = "\n".join(f"    {line}" for line in tail.rstrip("\n").splitlines())
    return f"; last lines of its log:\n{lines}"

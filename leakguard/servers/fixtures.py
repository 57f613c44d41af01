"""The ``free_port`` and ``server_process`` fixtures."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from leakguard.servers.errors import ServerError
from leakguard.servers.process import ServerProcess
from leakguard.servers.readiness import Ready
from leakguard.servers.state import servers_state
from leakguard.servers.watcher import watch


class ServerFactory(Protocol):
    """What the ``server_process`` fixture returns: call it to start a server."""

    def __call__(
        self,
        cmd: Sequence[str] | str,
        *,
        port: int | None = None,
        ready: Ready = None,
        **kwargs: Any,
    ) -> ServerProcess: ...


def server_process_factory(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerFactory]:
    """The body of the ``server_process`` fixture (`leakguard.servers.pytest_plugin`)."""
    started: list[ServerProcess] = []
    log_dir: list[Path] = []

    def factory(
        cmd: Sequence[str] | str,
        *,
        port: int | None = None,
        ready: Ready = None,
        **kwargs: Any,
    ) -> ServerProcess:
        if "log_path" not in kwargs:
            if not log_dir:
                log_dir.append(tmp_path_factory.mktemp("servers"))
            kwargs["log_path"] = log_dir[0] / f"server{len(started)}.log"
        kwargs.setdefault("run_id", servers_state(request.config).run_id)
        server = ServerProcess(cmd, port=port, ready=ready, **kwargs)
        server.start()  # a failed start cleans up after itself
        started.append(server)
        return server

    yield factory

    problems: list[str] = []
    for server in reversed(started):
        try:
            server.stop()
        except ServerError as exc:
            problems.append(str(exc))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


def watch_server(request: pytest.FixtureRequest, server: ServerProcess) -> ServerProcess:
    """Health-check ``server`` before each test that uses the calling (module/session) fixture.

    Automatic for a server started while such a fixture is set up, on the fixture's own thread;
    call this for one started elsewhere (another thread, an earlier fixture, a plugin hook).
    Named after the fixture unless the server was given a name.
    """
    if request.fixturename is not None:
        watch(request.config, request.fixturename, server)
    return server

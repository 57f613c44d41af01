"""pytest hooks for servers: sweep stale servers at start, health-check long-lived ones per test.

Register this module (it also brings the ``free_port`` and ``server_process`` fixtures). It works
whether or not leak checking is on.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from leakguard.servers import records, statedir
from leakguard.servers.fixtures import free_port, server_process, watch_server
from leakguard.servers.process import ServerProcess
from leakguard.servers.state import SERVERS_KEY, ServersState
from leakguard.servers.watcher import WATCHER_NAME

__all__ = ["free_port", "server_process"]  # fixtures: registered with this plugin module

LOG_DAYS = 7  # logs of servers started outside the fixtures (no tmp_path) are kept this long


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SERVERS_KEY] = ServersState()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    # The controller sweeps once; xdist workers start after it and must not race it.
    if hasattr(session.config, "workerinput"):
        return
    state = session.config.stash[SERVERS_KEY]
    try:
        state.swept = records.sweep()
        statedir.prune("logs", older_than=LOG_DAYS * 86400)
    except OSError as exc:
        state.swept = [f"could not sweep stale servers: {exc}"]


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"leakguard: {line}" for line in config.stash[SERVERS_KEY].swept]


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[object], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    result = yield
    # A function-scoped server lives and dies with its test; only longer-lived ones are watched.
    if isinstance(result, ServerProcess) and fixturedef.scope != "function":
        watch_server(request, result)
    return result


def pytest_unconfigure(config: pytest.Config) -> None:
    watcher = config.pluginmanager.get_plugin(WATCHER_NAME)
    if watcher is not None:
        config.pluginmanager.unregister(watcher)

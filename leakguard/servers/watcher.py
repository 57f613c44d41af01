"""Per-test health checks of long-lived servers: a plugin object registered only once the first
module- or session-scoped server is watched, so a run without one pays nothing per test."""

from __future__ import annotations

import warnings
from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

from leakguard.core.grace import settle
from leakguard.servers.errors import ServerError, ServerRestartedWarning
from leakguard.servers.state import SERVERS_KEY, ServersState, Watched, servers_state

if TYPE_CHECKING:
    from leakguard.servers.process import ServerProcess

WATCHER_NAME = "leakguard-server-watcher"
_NOTICE_KEY = pytest.StashKey[list[tuple[str, str]]]()


def watch(config: pytest.Config, fixture: str, server: ServerProcess) -> None:
    """Health-check ``server`` before each test that uses ``fixture``; name it after the fixture
    unless it was given a name (or the fixture has another server that took the name)."""
    state = servers_state(config)
    if any(w.server is server for w in state.watched):
        return
    # The fixture's earlier instance (last module's server, stopped at its teardown) is done.
    state.watched = [w for w in state.watched if w.fixture != fixture or _running(w.server)]
    if server.name == server.default_name and all(w.fixture != fixture for w in state.watched):
        server.rename(fixture)
    state.watched.append(Watched(server, fixture))
    if config.pluginmanager.get_plugin(WATCHER_NAME) is None:
        config.pluginmanager.register(ServerWatcher(), WATCHER_NAME)


def _running(server: ServerProcess) -> bool:
    """Up, or died without being stopped (still to be restarted): not stopped on purpose."""
    return server.is_alive() or server.died


class ServerWatcher:
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        # Restart here, outside the test's setup: the new server is not made "by" the test.
        notices: list[tuple[str, str]] = []
        state = item.config.stash[SERVERS_KEY]
        used = getattr(item, "fixturenames", ())  # only pytest.Function has fixtures
        for watched in state.watched:
            if watched.fixture in used:
                notice = _check(watched, state)
                if notice is not None:
                    notices.append(notice)
        item.stash[_NOTICE_KEY] = notices
        return (yield)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        for kind, message in item.stash.get(_NOTICE_KEY, []):
            if kind == "fail":
                pytest.fail(message, pytrace=False)
            warnings.warn(ServerRestartedWarning(message), stacklevel=1)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if call.when == "setup":
            return report
        # A waitid per watched server (microseconds): name the test during which one died. Again
        # after teardown: a server that crashed as the test ended may still have been exiting.
        state = item.config.stash[SERVERS_KEY]
        for watched in state.watched:
            if watched.died_during is None and _has_died(watched.server):
                watched.died_during = item.nodeid
                if call.when == "call":
                    message = watched.server.death_message("this test")
                    report.sections.append(("leakguard servers", message))
        if call.when == "teardown":
            state.last_nodeid = item.nodeid
        return report

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        config.pluginmanager.unregister(self)


def _check(watched: Watched, state: ServersState) -> tuple[str, str] | None:
    server = watched.server
    if watched.broken is not None:
        return ("fail", watched.broken)
    if not _has_died(server):
        return None
    during = watched.died_during or f"or after {state.last_nodeid or 'its fixture setup'}"
    watched.died_during = None
    if server.on_death == "fail":
        watched.broken = f"{server.death_message(during)}; not restarted (on_death='fail')"
        server.stop_quietly()
        return ("fail", watched.broken)
    try:
        message = server.ensure_alive(during)
    except ServerError as exc:
        watched.broken = str(exc)
        return ("fail", watched.broken)
    except Exception as exc:  # any failure to restart must fail fast, not crash the run
        watched.broken = f"{server.death_message(during)}; restart failed: {exc!r}"
        return ("fail", watched.broken)
    return ("warn", message) if message else None


def _has_died(server: ServerProcess) -> bool:
    if not server.dying:
        return False
    # A crash closes the server's sockets before its exit is complete: wait those few ms, so no
    # test is handed a dead port as if the server were up, and the message has the exit code.
    settle(lambda: server.died, bool, server.stop_timeout)
    return True

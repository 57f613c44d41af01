"""The per-run state of the server helpers, made in ``config.stash`` on their first use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from leakguard.servers import records

if TYPE_CHECKING:
    from leakguard.servers.process import ServerProcess


@dataclass
class Watched:
    """A server made by a module- or session-scoped fixture, checked before each test using it."""

    server: ServerProcess
    fixture: str
    died_during: str | None = None
    broken: str | None = None  # set when it died and could not (or may not) be restarted


@dataclass
class ServersState:
    run_id: str = field(default_factory=records.new_run_id)
    watched: list[Watched] = field(default_factory=list)
    last_nodeid: str | None = None


SERVERS_KEY = pytest.StashKey[ServersState]()


def servers_state(config: pytest.Config) -> ServersState:
    """This run's state, made on first use: a run that starts no server never has one."""
    state = config.stash.get(SERVERS_KEY, None)
    if state is None:
        state = config.stash[SERVERS_KEY] = ServersState()
    return state

"""The per-run state of the servers plugin, kept in ``config.stash`` (no module globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from leakguard.servers import records
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
    watched: dict[str, Watched] = field(default_factory=dict)
    swept: list[str] = field(default_factory=list)
    last_nodeid: str | None = None


SERVERS_KEY = pytest.StashKey[ServersState]()

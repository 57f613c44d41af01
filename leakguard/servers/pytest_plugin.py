"""The ``free_port`` and ``server_process`` fixtures, and nothing else: no hook of any kind.

The installed leakguard plugin brings this module, so the fixtures are there with a plain
``pip install``. Everything else joins on first use: the state directory when a port or server is
handed out, the stale-server sweep when a server starts, the per-test health checks when a
longer-lived fixture starts one (``leakguard.servers.firstuse``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from leakguard.servers.fixtures import ServerFactory

# The helpers' modules are imported inside the fixtures: a run that never asks for one pays
# nothing for them at start-up (they cost ≈ 30 ms to import).


@pytest.fixture
def free_port() -> int:
    """A loopback port free now and reserved against every other ``free_port`` call for a while."""
    from leakguard.servers import ports

    return ports.free_port()


@pytest.fixture
def server_process(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerFactory]:
    """Start servers (`ServerProcess` arguments); all are stopped when the requester ends.

    Logs go to a fresh directory under pytest's base temp, kept with the last runs' temp dirs.
    """
    from leakguard.servers.fixtures import server_process_factory

    yield from server_process_factory(request, tmp_path_factory)

"""The ``free_port`` and ``server_process`` fixtures, and nothing else: no hook of any kind.

The installed leakguard plugin brings this module, so the fixtures are there with a plain
``pip install``. Everything else joins on first use: the state directory when a port or server is
handed out, the stale-server sweep when a server starts, the per-test health checks when a
longer-lived fixture starts one (``leakguard.servers.firstuse``).
"""

from __future__ import annotations

from leakguard.servers.fixtures import free_port, server_process

__all__ = ["free_port", "server_process"]  # fixtures: registered with this plugin module

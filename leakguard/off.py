"""``-p no:leakguard -p leakguard.off``: leakguard removed, its names still known to pytest.

With ``-p no:leakguard`` alone, an ini that says ``leakguard = true`` is an error under
``--strict-config`` ("Unknown config option"), a ``@pytest.mark.leakguard`` one under
``--strict-markers``, and ``--leakguard`` in ``addopts`` a usage error. This plugin declares the
same ini options, flags and markers, and does nothing else: no hooks, no checking.
"""

from __future__ import annotations

import pytest

from leakguard.plugin import markers, options

_PLUGIN = "leakguard"


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    # Without -p no:leakguard the real plugin loads (its entry point comes after -p plugins),
    # and its own declarations stand: declaring them twice would be an error.
    if pluginmanager.is_blocked(_PLUGIN):
        options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.is_blocked(_PLUGIN):
        for help_text in markers.MARKER_HELP.values():
            config.addinivalue_line("markers", help_text)

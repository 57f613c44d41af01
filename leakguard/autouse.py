"""``pytest_plugins = ["leakguard.autouse"]`` in the root conftest: check every test.

The switch is a configure-time flag rather than an autouse fixture: a fixture would start
after other fixtures and cost ≈ 45 µs per test, a flag costs nothing.
"""

from __future__ import annotations

import pytest

from leakguard.plugin.stash import AUTOUSE


def pytest_configure(config: pytest.Config) -> None:
    config.stash[AUTOUSE] = True

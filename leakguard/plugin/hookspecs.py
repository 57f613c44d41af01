"""Hooks leakguard adds to pytest, so conftests and plugins can extend it."""

from __future__ import annotations

import pytest

from leakguard.core.registry import TrackerRegistry


@pytest.hookspec(historic=True)
def pytest_leakguard_register_trackers(registry: TrackerRegistry) -> None:
    """Register third-party trackers: ``registry.register(MyTracker)``.

    Called once per run at configure time (historic: a conftest loaded later still gets it,
    but only trackers known at configure time can be named in ini options and flags).
    """

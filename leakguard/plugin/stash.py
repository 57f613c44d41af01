"""What the plugin keeps per run and per test (``config.stash`` and ``item.stash`` keys), and
how a fault in the plugin's own glue reaches the summary."""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import pytest

from leakguard.core import active
from leakguard.core.faults import InternalProblem
from leakguard.core.registry import TrackerRegistry
from leakguard.core.runstate import Run, TestState
from leakguard.errors import LeakguardInternalWarning
from leakguard.plugin import markers, options
from leakguard.plugin.summary import Summary

AUTOUSE = pytest.StashKey[bool]()
RUN = pytest.StashKey[Run]()
RUN_OPTIONS = pytest.StashKey[options.RunOptions]()
REGISTRY = pytest.StashKey[TrackerRegistry]()
SUMMARY = pytest.StashKey[Summary]()
PLAN = pytest.StashKey[markers.Plan | None]()
STATE = pytest.StashKey[TestState]()
PAYLOADS = pytest.StashKey[list[dict[str, Any]]]()
"""A checked test's finding payloads, from its teardown check to its teardown report."""
ACTIVE = pytest.StashKey[active.ActiveRun]()
REPORTER_NAME = "leakguard-reporter"
PHASES_NAME = "leakguard-test-phases"
TEST_REPORTER_NAME = "leakguard-test-reports"


def internal_problem(
    item: pytest.Item | pytest.Collector, exc: Exception, phase: str = "check"
) -> None:
    """A fault in leakguard's own glue while checking ``item``: never the user's error."""
    record_problem(item.config, InternalProblem.of(exc, phase, during=item.nodeid).to_dict())


def record_problem(config: pytest.Config, data: dict[str, Any]) -> None:
    """Every internal problem reaches the summary (on an xdist worker: through the next test
    report), whatever the warning filters say; a warning is issued as well."""
    run = config.stash.get(RUN, None)
    if hasattr(config, "workerinput") and run is not None:
        run.pending_problems.append(data)
    else:
        config.stash[SUMMARY].add_problem(data)
    # -W error must not turn leakguard's own fault into the user's failure.
    with contextlib.suppress(Warning):
        warnings.warn(LeakguardInternalWarning(data["message"]), stacklevel=2)


def file_problem(option: str, exc: OSError) -> dict[str, Any]:
    return InternalProblem.of(exc, f"{option}: writing the file").to_dict()

"""What the plugin keeps per run and per test (``config.stash`` and ``item.stash`` keys), and
how a fault in the plugin's own glue reaches the summary."""

from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING, Any

import pytest

from leakguard.core.faults import InternalProblem
from leakguard.errors import LeakguardInternalWarning

if TYPE_CHECKING:
    # Types only: this module is imported by every run that has leakguard installed, checked
    # or not, and the run's machinery is imported once some test is checked.
    from leakguard.core import active
    from leakguard.core.baseline import Baseline
    from leakguard.core.registry import TrackerRegistry
    from leakguard.core.runstate import Run
    from leakguard.plugin import markers, options
    from leakguard.plugin.summary import Summary

AUTOUSE: pytest.StashKey[bool] = pytest.StashKey()
RUN: pytest.StashKey[Run] = pytest.StashKey()
RUN_OPTIONS: pytest.StashKey[options.RunOptions] = pytest.StashKey()
REGISTRY: pytest.StashKey[TrackerRegistry] = pytest.StashKey()
SUMMARY: pytest.StashKey[Summary] = pytest.StashKey()
PLAN: pytest.StashKey[markers.Plan | None] = pytest.StashKey()
PAYLOADS: pytest.StashKey[dict[str, list[dict[str, Any]]]] = pytest.StashKey()
"""Per node id, a checked test's finding payloads, from its teardown check to its teardown
report (which carries them to the summary, and under xdist to the controller)."""
ACTIVE: pytest.StashKey[active.ActiveRun] = pytest.StashKey()
BASELINE: pytest.StashKey[Baseline] = pytest.StashKey()
"""The known leaks (``--leakguard-baseline``), read at configure."""
REPORTER_NAME = "leakguard-reporter"
PHASES_NAME = "leakguard-test-phases"
TEST_REPORTER_NAME = "leakguard-test-reports"
POLLUTERS_NAME = "leakguard-polluters"
FIXTURE_ENDS_NAME = "leakguard-fixture-ends"
PLUGIN_NAMES = (REPORTER_NAME, PHASES_NAME, TEST_REPORTER_NAME, POLLUTERS_NAME, FIXTURE_ENDS_NAME)
"""Every plugin object leakguard registers, unregistered at unconfigure."""


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
        # The next test report carries it to the controller. Loaded with the run's machinery:
        # this opens no file.
        from leakguard.plugin.reports import register_test_reporter

        register_test_reporter(config)
    else:
        config.stash[SUMMARY].add_problem(data)
    # -W error must not turn leakguard's own fault into the user's failure.
    with contextlib.suppress(Warning):
        warnings.warn(LeakguardInternalWarning(data["message"]), stacklevel=2)


def file_problem(option: str, exc: OSError) -> dict[str, Any]:
    return InternalProblem.of(exc, f"{option}: writing the file").to_dict()


def globally_on(config: pytest.Config) -> bool:
    """Every test is checked (``--leakguard``, the ini option, or ``leakguard.autouse``)."""
    return config.stash[RUN_OPTIONS].enabled or config.stash.get(AUTOUSE, False)

"""Test-by-test comparison of the no-plugin runs with the leakguard run."""

from __future__ import annotations

from dataclasses import dataclass, field

from .outcomes import Run, TestOutcome
from .suites import Suite

MISSING = TestOutcome(outcome="not run")


@dataclass
class Change:
    nodeid: str
    without: str
    with_: str
    flaky: str = ""  # why it does not count: differs between no-plugin runs, or known flaky


@dataclass
class Comparison:
    tests: int
    changed: list[Change] = field(default_factory=list)
    flaky: list[Change] = field(default_factory=list)  # differs, but so do no-plugin runs
    flagged_tests: int = 0  # tests with an extra error at teardown: a leak report


def _flaky_reason(suite: Suite, nodeid: str, baselines: list[Run]) -> str:
    known = dict(suite.flaky)
    if nodeid in known:
        return f"known flaky: {known[nodeid]}"
    keys = {run.tests.get(nodeid, MISSING).key for run in baselines}
    return "differs between no-plugin runs" if len(keys) > 1 else ""


def compare(suite: Suite, baselines: list[Run], guarded: Run) -> Comparison:
    nodeids = set(guarded.tests)
    for run in baselines:
        nodeids |= set(run.tests)
    result = Comparison(tests=len(nodeids))
    for nodeid in sorted(nodeids):
        after = guarded.tests.get(nodeid, MISSING)
        if after.teardown == "leak":
            result.flagged_tests += 1
        befores = [run.tests.get(nodeid, MISSING) for run in baselines]
        if after.key in {b.key for b in befores}:
            continue
        change = Change(nodeid, befores[0].text(), after.text())
        change.flaky = _flaky_reason(suite, nodeid, baselines)
        (result.flaky if change.flaky else result.changed).append(change)
    return result

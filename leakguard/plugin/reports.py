"""The per-test report hooks of a run where some test is checked: a test's leaks onto its
teardown report (and so to the xdist controller), the polluter section of a failing test."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from leakguard.plugin.stash import (
    PAYLOADS,
    PHASES_NAME,
    POLLUTERS_NAME,
    RUN,
    SUMMARY,
    TEST_REPORTER_NAME,
    internal_problem,
)


class PolluterReporter:
    """The polluter section of a failing test: the residue it ran with, and the earlier tests
    whose leftovers explain its failure.

    Registered by the first leak path (`register_polluters`): before it there is no residue and
    no aftermath to explain a failure with, and no test pays for a report hook wrapper.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.run = config.stash[RUN]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.failed and report.when != "teardown":
            parts = self._polluters(item, call, report)
            if parts:
                report.sections.append(("leakguard", "\n".join(parts)))
        return report

    def _polluters(
        self, item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport
    ) -> list[str]:
        """For a failing test: the residue it ran with, and the earlier tests whose leftovers
        explain its failure (here, while the exception and the frames it names are at hand)."""
        run = self.run
        hooks = item.config.pluginmanager.get_plugin(PHASES_NAME)
        state = hooks.state_of(item) if hooks is not None else None
        note = state.residue_note if state is not None else None
        aftermath = run.aftermath  # None until the first leak path
        after = aftermath is not None and bool(aftermath.ports or aftermath.pools)
        if not note and not (call.excinfo is not None and after):
            return []
        # Either is only there after a leak path, whose modules are loaded by then.
        from leakguard.core import polluters

        try:
            text = str(report.longrepr)
            parts: list[str] = []
            if note:
                residue = [(e.owner, e.resource) for e in run.residue.values()]
                parts = [note, *polluters.explain(text, residue, run.root)]
            if call.excinfo is not None and aftermath is not None and after:
                parts += aftermath.explain(call.excinfo.value, text, run.root)
        except Exception as exc:  # a fault in leakguard must never hide the user's result
            internal_problem(item, exc, "explaining a failure")
            return []
        return parts


def register_test_reporter(config: pytest.Config) -> None:
    """When a report first has something to carry: a leak, a problem on an xdist worker; or at
    the start, on an xdist controller and when a timeline is made."""
    if config.pluginmanager.get_plugin(TEST_REPORTER_NAME) is None:
        config.pluginmanager.register(TestReporter(config), TEST_REPORTER_NAME)


def register_polluters(config: pytest.Config) -> None:
    """Once, on the first leak path: failing tests from now on may have polluters to name."""
    if config.pluginmanager.get_plugin(POLLUTERS_NAME) is None:
        config.pluginmanager.register(PolluterReporter(config), POLLUTERS_NAME)


class TestReporter:
    """A checked test's leaks onto its teardown report, and (in the collecting process) the
    summary.

    Registered only where it has work (`register_test_reporter`): from the first leak or
    problem a report must carry, on an xdist controller (which gathers what the workers'
    reports carry), and where a timeline is made. A clean test's three reports pay nothing.
    """

    __test__ = False  # not a test class, whatever pytest's name patterns say

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.run = config.stash[RUN]
        self.is_worker = hasattr(config, "workerinput")
        self.payloads = config.stash.setdefault(PAYLOADS, {})

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # tryfirst: attach before xdist's worker serializes the report for the controller.
        run = self.run
        if run.timeline is not None:  # timeline (issue 15), after the polluter section
            from leakguard.plugin import timeline

            timeline.logreport(self.config, run, report)
        if report.when != "teardown":
            return
        payload = self.payloads.pop(report.nodeid, None) if self.payloads else None
        if payload:
            # Carried on the teardown report (not kept in this process): under xdist the report
            # is what reaches the controller's summary and JSON.
            report.leakguard = payload  # type: ignore[attr-defined]  # reports take extras
        if run.pending_problems:
            problems = list(run.pending_problems)
            run.pending_problems.clear()
            report.leakguard_problems = problems  # type: ignore[attr-defined]  # as above
        if self.is_worker:
            return
        summary = self.config.stash[SUMMARY]
        payload = getattr(report, "leakguard", None)
        if payload:
            summary.add(payload)
        for problem in getattr(report, "leakguard_problems", None) or ():
            summary.add_problem(problem)

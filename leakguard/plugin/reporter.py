"""The per-run reporting plugin: a test's leaks onto its reports (and so to the xdist
controller), the polluter section of a failing test, the JSON report, the terminal summary."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from leakguard.core import polluters
from leakguard.plugin import timeline
from leakguard.plugin.stash import (
    PAYLOADS,
    RUN,
    RUN_OPTIONS,
    STATE,
    SUMMARY,
    file_problem,
    internal_problem,
)
from leakguard.trackers.processes.interrupts import GUARD


class TestReporter:
    """The per-test report hooks: a checked test's leaks onto its teardown report, the polluter
    section of a failing test, and (in the collecting process) the summary.

    Registered only where they have work: once some test is checked in this process, or on an
    xdist controller (which gathers what the workers' reports carry). Installed and off, no
    test pays for them.
    """

    __test__ = False  # not a test class, whatever pytest's name patterns say

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.run = config.stash[RUN]
        self.is_worker = hasattr(config, "workerinput")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.when == "teardown":
            # Carried on the teardown report (not kept in this process): under xdist the report
            # is what reaches the controller's summary and JSON.
            payload = item.stash.get(PAYLOADS, None)
            if payload:
                del item.stash[PAYLOADS]
                report.leakguard = payload  # type: ignore[attr-defined]  # reports take extras
        elif report.failed:
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
        state = item.stash.get(STATE, None)
        note = state.residue_note if state is not None else None
        aftermath = run.aftermath
        if not note and not (call.excinfo is not None and (aftermath.ports or aftermath.pools)):
            return []
        try:
            text = str(report.longrepr)
            parts: list[str] = []
            if note:
                residue = [(e.owner, e.resource) for e in run.residue.values()]
                parts = [note, *polluters.explain(text, residue, run.root)]
            if call.excinfo is not None and (aftermath.ports or aftermath.pools):
                parts += aftermath.explain(call.excinfo.value, text, run.root)
        except Exception as exc:  # a fault in leakguard must never hide the user's result
            internal_problem(item, exc, "explaining a failure")
            return []
        return parts

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # tryfirst: attach before xdist's worker serializes the report for the controller.
        run = self.run
        if run.timeline is not None:  # timeline (issue 15), after the polluter section
            timeline.logreport(self.config, run, report)
        if report.when != "teardown":
            return
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


class RunReporter:
    """The run's ends: an interrupt, the fixtures finalized after the last test, the JSON
    report, what xdist workers send when they stop, the terminal summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.is_worker = hasattr(config, "workerinput")

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # Interrupted in a test's setup or call: its teardown hook never runs.
        GUARD.interrupted(GUARD.cause_of(excinfo.value))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # Fixtures finalized outside any test's teardown (e.g. after -x stopped the run).
        run = self.config.stash[RUN]
        summary = self.config.stash[SUMMARY]
        findings = run.check_finished_fixtures()
        # Uninstalled now, not at unconfigure: a fault there must still reach the summary.
        run.engine.close()
        if findings and not self.is_worker:
            summary.add([f.payload() for f in findings])
            if any(f.action == "fail" for f in findings) and session.exitstatus == 0:
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
        run_options = self.config.stash[RUN_OPTIONS]
        if self.is_worker:
            # What no test report carried (a fault after the last test) goes with the worker.
            output = self.config.workeroutput  # type: ignore[attr-defined]  # pytest-xdist's
            output["leakguard_problems"] = list(run.pending_problems)
            if run.engine.stats is not None:
                output["leakguard_stats"] = run.engine.stats.to_dict()
            return
        if run.baseline:  # the ratchet: known leaks that did not show up may be fixed
            unseen = run.baseline.unseen(summary.of_kind("leak"))
            if unseen:
                summary.notes.append(
                    f"baseline: {unseen} of {len(run.baseline)} known leaks not seen in this run "
                    "(fixed? after a full run, shrink the file: --leakguard-update-baseline)"
                )
        if run_options.update_baseline and run_options.baseline_path:
            from leakguard.core.baseline import Baseline  # imported at configure: no file opened

            try:
                count = Baseline.write(run_options.baseline_path, summary.of_kind("leak"))
            except OSError as exc:
                summary.add_problem(file_problem("--leakguard-update-baseline", exc))
            else:
                path = run_options.baseline_path
                summary.notes.append(f"baseline written: {count} known leaks in {path}")
        if run_options.report_path:
            try:
                summary.write_json(run_options.report_path)
            except OSError as exc:
                summary.add_problem(file_problem("leakguard_report", exc))

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        # pytest-xdist's controller: problems a worker had after its last test report.
        output = getattr(node, "workeroutput", None) or {}
        summary = self.config.stash[SUMMARY]
        for problem in output.get("leakguard_problems", ()):
            summary.add_problem(problem)
        if summary.stats is not None and "leakguard_stats" in output:
            summary.stats.merge(output["leakguard_stats"])

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        summary = self.config.stash[SUMMARY]
        busy = summary.findings or summary.problems or summary.notes or summary.stats
        if self.is_worker or not busy:
            return
        terminalreporter.section("leakguard")
        summary.write_terminal(terminalreporter.write_line)
        path = self.config.stash[RUN_OPTIONS].report_path
        if path:
            terminalreporter.write_line(f"JSON report: {path}")

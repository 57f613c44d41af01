"""The run's ends, registered in every run with leakguard installed: an interrupt, the fixtures
finalized after the last test, the JSON report, what xdist workers send when they stop, the
terminal summary. Light: a run where nothing is checked imports none of the run's machinery."""

from __future__ import annotations

from typing import Any

import pytest

from leakguard.plugin.stash import BASELINE, RUN, RUN_OPTIONS, SUMMARY, file_problem


class RunReporter:
    """The run's ends: an interrupt, the fixtures finalized after the last test, the JSON
    report, what xdist workers send when they stop, the terminal summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.is_worker = hasattr(config, "workerinput")

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # Interrupted in a test's setup or call: its teardown hook never runs.
        if RUN in self.config.stash:  # else nothing is checked, and no process is watched
            from leakguard.trackers.processes.interrupts import GUARD

            GUARD.interrupted(GUARD.cause_of(excinfo.value))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        summary = self.config.stash[SUMMARY]
        run = self.config.stash.get(RUN, None)  # None: no test was checked
        if run is not None:
            # Fixtures finalized outside any test's teardown (e.g. after -x stopped the run).
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
            if run is None:
                output["leakguard_problems"] = list(summary.problems)
                return
            output["leakguard_problems"] = list(run.pending_problems)
            if run.engine.stats is not None:
                output["leakguard_stats"] = run.engine.stats.to_dict()
            return
        baseline = self.config.stash.get(BASELINE, None)
        if baseline and run is not None:  # the ratchet: known leaks that did not show up
            unseen = baseline.unseen(summary.of_kind("leak"))
            if unseen:
                summary.notes.append(
                    f"baseline: {unseen} of {len(baseline)} known leaks not seen in this run "
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

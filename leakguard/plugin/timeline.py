"""The pytest glue of the timeline: record each checked test's point, carry it to the xdist
controller on the teardown report, and write the standalone HTML report at the end."""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from leakguard.core.timeline import Timeline
from leakguard.core.timeline.record import FindingLike, Point

if TYPE_CHECKING:
    from leakguard.core.runstate import Run, TestState
    from leakguard.plugin.summary import Summary

NAME = "leakguard-timeline"
HTML_EXTRAS = "leakguard-html-extras"
NAMES = (NAME, HTML_EXTRAS)
_REPORT_ATTR = "leakguard_timeline"


@dataclass
class Recording:
    """This process's timeline, where the collecting side gathers every process's points,
    and where the HTML report goes."""

    timeline: Timeline
    summary: Summary
    html_path: str | None
    collector: bool
    """True in the process that writes the reports (not an xdist worker)."""
    points: list[Point] = field(default_factory=list)


RECORDING = pytest.StashKey[Recording]()


def configure(
    config: pytest.Config, run: Run, summary: Summary, json_path: str | None, html_path: str | None
) -> None:
    """Record a timeline when a report will show it (JSON, HTML, or pytest-html's extras).

    Off, nothing is recorded and the engine is not asked to count: the clean path is untouched.
    """
    html_extras = bool(config.pluginmanager.has_plugin("html") and _option(config, "htmlpath"))
    if not (json_path or html_path or html_extras):
        return
    workerinput = getattr(config, "workerinput", None)
    worker = str(workerinput.get("workerid", "")) if isinstance(workerinput, dict) else ""
    timeline = Timeline(worker, run.root)
    recording = Recording(timeline, summary, html_path, workerinput is None)
    config.stash[RECORDING] = recording
    run.timeline = timeline
    run.engine.observe = timeline.counter.observe
    if json_path or html_path:
        summary.timeline = recording.points
    config.pluginmanager.register(TimelineHooks(recording), NAME)
    if html_extras:
        from leakguard.plugin.pytest_html_extra import HtmlExtras

        config.pluginmanager.register(HtmlExtras(timeline), HTML_EXTRAS)


def _option(config: pytest.Config, name: str) -> Any:
    try:
        return config.getoption(name)
    except ValueError:
        return None


def begun(run: Run, state: TestState) -> None:
    """The test's setup snapshot is taken: open its point with the residue present now."""
    if run.timeline is not None:
        residue = [(e.owner, e.resource) for e in run.residue.values()] if run.residue else []
        run.timeline.begun(state.nodeid, residue)


def ended(run: Run, state: TestState, findings: Sequence[FindingLike]) -> None:
    """The end-of-teardown check is done. With findings, count again after cleanup (the leak
    path only): what the next test inherits is what the chart must show."""
    timeline = run.timeline
    if timeline is None:
        return
    if findings:
        for name, snapshot in run.engine.snapshot(list(state.before)).items():
            timeline.counter.observe(name, snapshot)
    timeline.ended(state.nodeid, findings)


def logreport(config: pytest.Config, run: Run, report: pytest.TestReport) -> None:
    """Each phase's report: outcome and polluters on the recording side; at teardown the point
    rides on the report, and the collecting side (controller, or the only process) keeps it."""
    timeline = run.timeline
    if timeline is None:
        return
    nodeid = report.nodeid
    if timeline.current(nodeid) is not None:
        timeline.outcome(nodeid, report.when, report.outcome, hasattr(report, "wasxfail"))
        if report.failed and report.when != "teardown":
            timeline.polluted(nodeid, _polluters(report, run))
        if report.when == "teardown":
            setattr(report, _REPORT_ATTR, timeline.close(nodeid))
    point: Point | None = getattr(report, _REPORT_ATTR, None)
    recording = config.stash.get(RECORDING, None) if point else None
    if point and recording is not None and recording.collector:
        recording.points.append(point)  # grouped by worker at the end of the run


def _polluters(report: pytest.TestReport, run: Run) -> list[str]:
    """The earlier tests the polluter section (just added by leakguard's reporter) names."""
    lines = [
        line
        for title, text in report.sections
        if title == "leakguard"
        for line in text.splitlines()[1:]
    ]
    if not lines:
        return []
    owners = dict.fromkeys(entry.owner for entry in run.residue.values())
    named = []
    for owner in owners:
        pattern = re.compile(r"(?<!\S)" + re.escape(owner) + r"(?!\S)")
        if any(pattern.search(line) for line in lines):
            named.append(owner)
    return named


class TimelineHooks:
    """The end of the run: write the HTML report (controller or only process) and name it."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, None, None]:
        recording = self.recording
        # Before the JSON report is written: one timeline per worker, each in run order (the
        # workers' points arrive interleaved). Sorted in place: the summary holds this list.
        recording.points.sort(key=lambda p: (p["worker"], p["index"]))
        result = yield
        # After every other sessionfinish: session-end fixture findings are in too.
        self._write_html(session)
        return result

    def _write_html(self, session: pytest.Session) -> None:
        recording = self.recording
        path = recording.html_path
        if not (path and recording.collector):
            return
        from leakguard.core.faults import InternalProblem
        from leakguard.core.htmlreport import write_report

        summary = recording.summary
        data = {**summary.to_json(), "timeline": recording.points}
        try:
            root = session.config.rootpath
            write_report(path, data, title=f"leakguard: {root.name}", root=str(root))
        except OSError as exc:
            problem = InternalProblem.of(exc, "leakguard_html: writing the file")
            summary.add_problem(problem.to_dict())

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        recording = self.recording
        if recording.html_path and recording.collector:
            terminalreporter.write_line(f"leakguard HTML report: {recording.html_path}")

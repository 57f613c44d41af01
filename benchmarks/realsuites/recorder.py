"""A pytest plugin the suite runs load (`-p realsuites_recorder`): one JSON line per test phase.

Standalone on purpose (it is copied into each suite's venv): no import from the benchmark.
Each line is flushed at once, so a run that aborts (SIGABRT, a hung test killed) still tells
which tests ran, which one was running, and what leakguard reported for each.
"""

from __future__ import annotations

import json
import os
from typing import Any, TextIO

import pytest

PATH_VARIABLE = "REALSUITES_RECORD"


def _message(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The line that says what went wrong (or why it was skipped), not the whole traceback."""
    longrepr: Any = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, lineno, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    crash_message = str(getattr(crash, "message", "") or "").strip()
    if crash_message:
        return crash_message.splitlines()[0]
    text = report.longreprtext.strip()
    return text.splitlines()[0] if text else ""


class Recorder:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, record: dict[str, Any]) -> None:
        self.stream.write(json.dumps(record, default=str) + "\n")
        self.stream.flush()

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.write({"event": "start", "nodeid": nodeid})

    # trylast: leakguard attaches its payload to the teardown report in a tryfirst hook.
    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.write(
            {
                "event": "report",
                "nodeid": report.nodeid,
                "when": report.when,
                "outcome": report.outcome,
                "xfail": hasattr(report, "wasxfail"),
                "message": _message(report),
                "leakguard": getattr(report, "leakguard", None),
                "duration": round(report.duration, 4),
            }
        )

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            record = {"event": "collect_error", "nodeid": report.nodeid}
            self.write({**record, "message": _message(report)})

    def pytest_sessionfinish(self, exitstatus: int) -> None:
        self.write({"event": "finish", "exitstatus": int(exitstatus)})


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get(PATH_VARIABLE)
    # Not in xdist workers: the benchmark runs suites with -n 0, and a worker's lines would mix.
    if path and not hasattr(config, "workerinput"):
        stream = open(path, "a", encoding="utf-8")  # noqa: SIM115  # open for the whole run
        config.pluginmanager.register(Recorder(stream), "realsuites-recorder")
        config.add_cleanup(stream.close)

"""Read a run's recorder lines into one outcome per test, and leakguard's report into flags."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class TestOutcome:
    outcome: str = "incomplete"  # passed failed error skipped xfailed xpassed, or incomplete
    message: str = ""
    teardown: str = "ok"  # ok; leak: a leakguard report; error: any other teardown failure
    teardown_message: str = ""

    @property
    def key(self) -> tuple[str, bool]:
        """What must match between runs: a leak report at teardown is a flag, not a change."""
        return (self.outcome, self.teardown == "error")

    def text(self) -> str:
        parts = [self.outcome + (f" ({self.message})" if self.message else "")]
        if self.teardown == "error":
            parts.append(f"teardown error ({self.teardown_message})")
        return "; ".join(parts)


@dataclass
class Run:
    tests: dict[str, TestOutcome] = field(default_factory=dict)
    collect_errors: dict[str, str] = field(default_factory=dict)
    payloads: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False
    running: str | None = None  # the test under way when the run stopped, if it never finished


def _is_leak_report(record: dict[str, Any]) -> bool:
    payload = record.get("leakguard") or []
    failing = any(f.get("action") == "fail" for f in payload)
    # leakguard re-raises the test's own teardown error when there is one: that one is not a flag.
    message = str(record.get("message", "")).removeprefix("Failed: ")
    return failing and message.startswith("leakguard")


def _phase(test: TestOutcome, record: dict[str, Any]) -> None:
    when, outcome, xfail = record["when"], record["outcome"], record["xfail"]
    message = str(record.get("message") or "")[:300]
    if when == "teardown":
        if outcome == "failed":
            test.teardown = "leak" if _is_leak_report(record) else "error"
            test.teardown_message = message
        return
    if when == "setup" and outcome == "passed":
        return
    if outcome == "skipped":
        test.outcome = "xfailed" if xfail else "skipped"
    elif outcome == "passed":
        test.outcome = "xpassed" if xfail else "passed"
    else:
        test.outcome = "error" if when == "setup" else "failed"
    test.message = "" if test.outcome in ("passed", "xpassed") else message


def read_run(path: Path) -> Run:
    run = Run()
    if not path.exists():
        return run
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut by an abort
            continue
        event = record["event"]
        if event == "start":
            run.running = record["nodeid"]
        elif event == "report":
            _phase(run.tests.setdefault(record["nodeid"], TestOutcome()), record)
            if record["when"] == "teardown":
                run.running = None
                run.payloads.extend(record.get("leakguard") or [])
        elif event == "collect_error":
            run.collect_errors[record["nodeid"]] = record["message"]
        elif event == "finish":
            run.finished = True
    return run


def read_findings(report: Path | None, run: Run) -> tuple[list[dict[str, Any]], list[str]]:
    """Every flagged owner with its leaks, and leakguard's internal problems.

    The JSON report is written at the end of the run; an aborted run has only what the recorder
    saw on each test's teardown report.
    """
    if report is not None and report.exists():
        data = json.loads(report.read_text(encoding="utf-8"))
        return list(data.get("findings", [])), list(data.get("problems", []))
    return list(run.payloads), []


def short_path(filename: str) -> str:
    return re.sub(r"^.*/(site-packages|src/[^/]+)/", "", filename)


def origin_text(origin: dict[str, Any] | None) -> str:
    if not origin:
        return "(no origin recorded)"
    return f"{short_path(origin['filename'])}:{origin['lineno']} in {origin['function']}"


def flag_groups(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Leaks grouped by what they are (numbers blurred) and where they were made, biggest first."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for finding in findings:
        for leak in finding.get("leaks", []):
            shape = re.sub(r"0x[0-9a-f]+|\d+", "N", leak["description"])
            where = origin_text(leak.get("origin"))
            group = groups.setdefault(
                (leak["tracker"], shape, where),
                {
                    "tracker": leak["tracker"],
                    "description": leak["description"],
                    "origin": where,
                    "owners": [],
                    "actions": [],
                    "cleanup": [],
                    "notes": [],
                },
            )
            if finding["owner"] not in group["owners"]:
                group["owners"].append(finding["owner"])
            for key, value in (
                ("actions", finding.get("action")),
                ("cleanup", leak.get("cleanup")),
                *(("notes", note) for note in leak.get("notes", [])),
            ):
                if value and value not in group[key]:
                    group[key].append(value)
    return sorted(groups.values(), key=lambda g: -len(g["owners"]))

"""The leakguard run of a suite, continued in a fresh process when one dies part-way.

An abort (libuv's SIGABRT on a closed descriptor, a hang killed at the run limit) would hide
every later test; the tests that never ran go to a new process, so one abort costs one test.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .outcomes import Run, TestOutcome, read_findings, read_run
from .runner import RunMeta, run
from .suites import Suite
from .venvs import site_packages, source_dir

MAX_CONTINUATIONS = 50  # a bound, not a target: each continuation runs at least one test


@dataclass
class Guarded:
    metas: list[RunMeta] = field(default_factory=list)
    run: Run = field(default_factory=Run)  # every part's tests, merged
    findings: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    aborts: list[dict[str, Any]] = field(default_factory=list)


def node_path(suite: Suite, site: Path, nodeid: str) -> str:
    # Wheel suites run with --rootdir at site-packages, so their node ids are relative to it.
    return f"{site}/{nodeid}" if suite.layout == "wheel" else nodeid


def guarded_run(
    python: Path, suite: Suite, home: Path, extra: list[str], timeout: int, order: list[str]
) -> Guarded:
    """Run with leakguard; ``order`` (the no-plugin run's node ids) says what is still to run."""
    site, cwd = site_packages(home / "venv"), source_dir(suite, home)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    result = Guarded()
    paths: list[str] | None = None
    for attempt in range(MAX_CONTINUATIONS + 1):
        stem = f"leakguard-{stamp}" + (f"-continued{attempt}" if attempt else "")
        meta = run(python, suite, home, cwd, site, "leakguard", stem, extra, timeout, paths)
        part = read_run(Path(meta.records))
        findings, problems = read_findings(Path(meta.report) if meta.report else None, part)
        result.metas.append(meta)
        result.findings += findings
        result.problems += [p for p in problems if p not in result.problems]
        result.run.tests.update(part.tests)
        result.run.collect_errors.update(part.collect_errors)
        result.run.finished = part.finished
        if part.finished:
            break
        died = part.running
        if died is None:  # between tests (collection, session end): nothing to skip past
            result.aborts.append({"test": None, "exit_code": meta.exit_code, "continued": 0})
            break
        result.run.tests[died] = TestOutcome("died", f"the run died during it, {meta.exit_code}")
        remaining = [n for n in order if n not in result.run.tests]
        result.aborts.append({"test": died, "exit_code": meta.exit_code, "continued": 0})
        if not remaining or attempt == MAX_CONTINUATIONS:
            break
        result.aborts[-1]["continued"] = len(remaining)
        paths = [node_path(suite, site, n) for n in remaining]
    return result

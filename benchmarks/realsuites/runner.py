"""One pytest run of a suite, with or without leakguard, and the cache of no-plugin runs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from .suites import Suite

Mode = Literal["baseline", "leakguard"]

RECORD_VARIABLE = "REALSUITES_RECORD"  # read by recorder.py, which imports nothing from here
# Same flags in both runs: leakguard on or off is the only difference.
COMMON = ("-p", "realsuites_recorder", "-p", "no:randomly", "-p", "no:cacheprovider", "-q")


@dataclass
class RunMeta:
    mode: Mode
    exit_code: int  # negative: killed by that signal (e.g. -6 is SIGABRT, exit 134 in a shell)
    wall: float
    timed_out: bool
    command: list[str]
    records: str
    report: str | None
    log: str


def _default_sigint() -> None:
    # A benchmark started in the background inherits SIGINT ignored, and so would the suite:
    # Python then installs no KeyboardInterrupt handler, and trio's KI tests fail or hang.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def command(
    python: Path,
    suite: Suite,
    site: Path,
    mode: Mode,
    extra: list[str],
    report: Path | None,
    timeout: int,
) -> list[str]:
    args = [a.format(site=site) for a in suite.args]
    if suite.keyword:
        args += ["-k", suite.keyword[0]]
    for nodeid, _reason in suite.deselect:
        args += ["--deselect", nodeid]
    for path, _reason in suite.ignore:
        args += ["--ignore", path.format(site=site)]
    if suite.harness:
        args = ["-p", "realsuites_harness", *args]
    plugin = ["-p", "no:leakguard"] if mode == "baseline" else ["--leakguard"]
    if mode == "leakguard" and report is not None:
        plugin += ["--leakguard-report", str(report)]
    return [str(python), "-m", "pytest", *COMMON, f"--timeout={timeout}", *plugin, *extra, *args]


def baseline_key(suite: Suite, recipe: str, extra: list[str], timeout: int) -> str:
    """A no-plugin run's outcome depends on the suite's recipe and flags, not on leakguard."""
    what = [recipe, suite.args, suite.deselect, suite.ignore, suite.harness, extra, timeout]
    return hashlib.sha1(json.dumps(what).encode()).hexdigest()[:12]


def run(
    python: Path,
    suite: Suite,
    home: Path,
    cwd: Path,
    site: Path,
    mode: Mode,
    stem: str,
    extra: list[str],
    timeout: int,
) -> RunMeta:
    runs = home / "runs"
    runs.mkdir(exist_ok=True)
    records = runs / f"{stem}.jsonl"
    log = runs / f"{stem}.log"
    report = runs / f"{stem}.leakguard.json" if mode == "leakguard" else None
    for stale in (records, report):
        if stale is not None and stale.exists():
            stale.unlink()
    cmd = command(python, suite, site, mode, extra, report, timeout)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTHONPATH")}
    env[RECORD_VARIABLE] = str(records)
    start = time.perf_counter()
    timed_out = False
    with log.open("w", encoding="utf-8") as out:
        # Own session: on the whole-run limit the run's whole process group can be stopped.
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
        try:
            code = proc.wait(timeout=suite.run_limit)
        except subprocess.TimeoutExpired:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            code = proc.wait()
    wall = time.perf_counter() - start
    meta = RunMeta(
        mode,
        code,
        round(wall, 2),
        timed_out,
        cmd,
        str(records),
        str(report) if report else None,
        str(log),
    )
    (runs / f"{stem}.meta.json").write_text(json.dumps(asdict(meta), indent=1), encoding="utf-8")
    return meta


def cached(home: Path, stem: str) -> RunMeta | None:
    path = home / "runs" / f"{stem}.meta.json"
    if not path.exists():
        return None
    return RunMeta(**json.loads(path.read_text(encoding="utf-8")))

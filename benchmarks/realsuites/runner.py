"""One pytest run of a suite, with or without leakguard, and the cache of no-plugin runs."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from .suites import Suite

Mode = Literal["baseline", "leakguard"]

EXIT_GRACE = 30.0  # seconds a run may take to exit after pytest's summary
RECORD_VARIABLE = "REALSUITES_RECORD"  # read by recorder.py, which imports nothing from here
# Same flags in both runs: leakguard on or off is the only difference.
COMMON = ("-p", "realsuites_recorder", "-p", "no:randomly", "-p", "no:cacheprovider", "-q")


@dataclass
class RunMeta:
    mode: Mode
    exit_code: int  # negative: killed by that signal (e.g. -6 is SIGABRT, exit 134 in a shell)
    wall: float
    stopped: str  # empty, or why the benchmark stopped the run (run limit, hung at exit)
    command: list[str]
    records: str
    report: str | None
    log: str
    cpu: float = 0.0
    """CPU seconds (user + system) of the run and the descendants it waited for: far less
    disturbed than ``wall`` by other load on a shared machine. 0: not measured (older run)."""


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
    paths: list[str] | None = None,
) -> list[str]:
    """The pytest command line; ``paths`` (node ids) replaces the suite's own paths."""
    chosen = paths if paths is not None else [p.format(site=site) for p in suite.paths]
    args = [*(a.format(site=site) for a in suite.args), *chosen]
    if suite.keyword:
        args += ["-k", suite.keyword[0]]
    if suite.marks:
        args += ["-m", suite.marks[0]]
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
    what = [
        *(recipe, suite.args, suite.paths, suite.keyword, suite.marks, suite.deselect),
        suite.ignore,
        *(suite.harness, extra, timeout),
    ]
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
    paths: list[str] | None = None,
    write_report: bool = True,
) -> RunMeta:
    """One run of the suite; with leakguard, its JSON report unless ``write_report`` is off
    (the timing pairs: a report file turns on the per-test timeline, not a default)."""
    runs = home / "runs"
    runs.mkdir(exist_ok=True)
    records = runs / f"{stem}.jsonl"
    log = runs / f"{stem}.log"
    wanted = mode == "leakguard" and write_report
    report = runs / f"{stem}.leakguard.json" if wanted else None
    for stale in (records, report):
        if stale is not None and stale.exists():
            stale.unlink()
    cmd = command(python, suite, site, mode, extra, report, timeout, paths)
    # PYTHONDONTWRITEBYTECODE (set in some shells and CI images) would recompile leakguard and
    # re-rewrite every test module on each run: users' runs read their bytecode caches.
    dropped = ("PYTEST_ADDOPTS", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env[RECORD_VARIABLE] = str(records)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with log.open("w", encoding="utf-8") as out:
        # Own session: when the run must be stopped, its whole process group can be.
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_sigint,
        )
        code, wall, stopped = _wait(proc, records, suite.run_limit)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    meta = RunMeta(
        mode,
        code,
        round(wall, 2),
        stopped,
        cmd,
        str(records),
        str(report) if report else None,
        str(log),
        round(cpu, 2),
    )
    (runs / f"{stem}.meta.json").write_text(json.dumps(asdict(meta), indent=1), encoding="utf-8")
    return meta


def _finished(records: Path) -> bool:
    try:
        with records.open("rb") as f:
            f.seek(max(0, records.stat().st_size - 200))
            return b'"event": "finish"' in f.read()
    except OSError:
        return False


def _wait(proc: subprocess.Popen[bytes], records: Path, limit: float) -> tuple[int, float, str]:
    """Exit code, wall time and why it was stopped, if it was.

    A run can print its summary and then hang at interpreter exit, joining a non-daemon thread
    a test left blocked: it is stopped after ``EXIT_GRACE`` and timed to its summary.
    """
    start = time.perf_counter()
    finished_at: float | None = None
    stopped = ""
    while True:
        try:
            code = proc.wait(timeout=1.0)
            break
        except subprocess.TimeoutExpired:
            now = time.perf_counter()
            if finished_at is None and _finished(records):
                finished_at = now
            if finished_at is not None and now - finished_at > EXIT_GRACE:
                stopped = f"hung at exit, stopped {EXIT_GRACE:.0f} s after its summary"
            elif now - start > limit:
                stopped = f"stopped at the {limit:.0f} s run limit"
            if stopped:
                os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait()
                break
    end = finished_at if finished_at is not None and stopped else time.perf_counter()
    return code, end - start, stopped


def cached(home: Path, stem: str) -> RunMeta | None:
    path = home / "runs" / f"{stem}.meta.json"
    if not path.exists():
        return None
    return RunMeta(**json.loads(path.read_text(encoding="utf-8")))

"""Instructions, not seconds, on real suites: what leakguard adds to a few files of each.

Run (from the repository's root):
    python -m benchmarks.suite_instructions --workdir DIR [--suite NAME ...] [--jobs 2]

The whole-suite timings of ``python -m benchmarks.realsuites`` are what users feel, but on a
shared machine one suite's ratio moves by ±0.1 from one pair of runs to the next (starlette:
0.97× and 1.18× an hour apart). The number of instructions a run executes barely moves: the
same file under valgrind twice differs by well under 1 % (a suite's own timing loops are the
rest). This script runs chosen files of suites that ``benchmarks.realsuites`` has set up in
``--workdir`` (their virtual environments, leakguard as installed there), without and with
``--leakguard``, under valgrind's cachegrind, and prints the instructions each adds.

The files are chosen for what they exercise: anyio's ``test_fileio.py`` (blockbuster walks the
stack on every blocking call: ~900 audit events a test) and ``test_taskgroups.py`` (tasks),
tornado's web and HTTP server tests (sockets, a loop per test, tests inside the package),
starlette's form parsers (temporary files). To compare two leakguard trees, check each out in
the tree the suites' environments install from, and run this script once per tree.

``--whole NAME`` counts a whole suite instead, as ``benchmarks.realsuites`` runs it: the answer
for a suite whose timing pairs range over ±0.2 (trio, starlette), at ≈ 40× its run time. Under
valgrind a suite's timing-sensitive tests may fail; the outcome column says so, and a failure
that differs between the two runs moves the count a little.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.realsuites.runner import RECORD_VARIABLE, Mode, command
from benchmarks.realsuites.suites import by_name
from benchmarks.realsuites.venvs import site_packages, source_dir

FILES: dict[str, tuple[str, ...]] = {
    "anyio": ("tests/test_fileio.py", "tests/test_taskgroups.py"),
    "tornado": ("{site}/tornado/test/web_test.py", "{site}/tornado/test/httpserver_test.py"),
    "starlette": ("tests/test_formparsers.py",),
}
WHOLE = ""
"""The path of a job that counts the suite as a whole (its own paths and selections)."""
MODES: dict[str, Mode] = {"without": "baseline", "with": "leakguard"}
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")
_OUTCOME = re.compile(r"^=*\s*(\d+ (passed|failed).*?)\s*=*$", re.MULTILINE)


def count(workdir: Path, suite_name: str, path: str, mode: str) -> tuple[int, str]:
    """Instructions of one pytest run of ``path`` (and its last outcome line)."""
    suite = by_name([suite_name])[0]
    home = workdir / suite.name
    python = home / "venv" / "bin" / "python"
    site = site_packages(home / "venv")
    paths = None if path == WHOLE else [path.format(site=site)]
    args = command(python, suite, site, MODES[mode], [], None, 600, paths)
    with tempfile.TemporaryDirectory(prefix="leakguard-suite-instructions-") as tmp:
        env = dict(os.environ, PYTHONHASHSEED="0", ASYNC_TEST_TIMEOUT="300")
        env[RECORD_VARIABLE] = str(Path(tmp) / "records.jsonl")
        for name in ("PYTEST_ADDOPTS", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE"):
            env.pop(name, None)
        out = Path(tmp) / "cachegrind.out"
        proc = subprocess.run(
            [
                "valgrind",
                "--tool=cachegrind",
                "--cache-sim=no",
                f"--cachegrind-out-file={out}",
                *args,
            ],
            cwd=source_dir(suite, home),
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    found = _REFS.search(proc.stderr)
    if found is None:
        raise SystemExit(f"{suite_name} {path} {mode}: no count\n{proc.stderr[-2000:]}")
    outcomes = _OUTCOME.findall(proc.stdout)
    return int(found.group(1).replace(",", "")), outcomes[-1][0] if outcomes else "?"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, required=True, help="benchmarks.realsuites' own")
    parser.add_argument("--suite", nargs="*", choices=sorted(FILES), default=sorted(FILES))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--whole",
        nargs="*",
        default=[],
        metavar="NAME",
        help="count these suites whole instead (any suite benchmarks.realsuites knows)",
    )
    opts = parser.parse_args()
    files = {name: [WHOLE] for name in opts.whole} or {n: list(FILES[n]) for n in opts.suite}
    jobs = [
        (name, path, mode)
        for name, paths in files.items()
        for path in paths
        for mode in MODES
        if (opts.workdir / name / "venv").is_dir()
    ]
    with ThreadPoolExecutor(max_workers=max(opts.jobs, 1)) as pool:
        found = pool.map(lambda job: count(opts.workdir, *job), jobs)
        counted = dict(zip(jobs, found, strict=True))
    print("| suite | file | outcome | without leakguard | with | added | ratio |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
    for name, paths in files.items():
        for path in paths:
            if (name, path, "without") not in counted:
                continue
            (base, outcome), (with_, _) = (
                counted[name, path, "without"],
                counted[name, path, "with"],
            )
            shown = path.replace("{site}/", "") if path != WHOLE else "(whole suite)"
            print(
                f"| {name} | `{shown}` | {outcome} | {base / 1e6:,.0f} M | {with_ / 1e6:,.0f} M "
                f"| +{(with_ - base) / 1e6:,.0f} M | {with_ / base:.3f}× |"
            )


if __name__ == "__main__":
    main()

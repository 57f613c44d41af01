"""Command line: set up each suite, run it without and with leakguard, compare, print the table."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .compare import compare
from .guarded import guarded_run
from .outcomes import flag_groups, read_run
from .runner import RunMeta, baseline_key, cached, run
from .suites import SUITES, Suite, by_name
from .table import render
from .timing import timing_pairs
from .venvs import SetupError, ensure, recipe_key, site_packages, source_dir

REPO = Path(__file__).resolve().parents[2]
COMMAND_KEPT = 40  # arguments of a run's command line kept in the JSON


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.realsuites", description=__doc__)
    parser.add_argument(
        "--suite",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this suite (repeatable)",
    )
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    parser.add_argument(
        "--workdir", type=Path, default=Path.home() / ".cache" / "leakguard-realsuites"
    )
    parser.add_argument(
        "--rerun-baseline",
        action="store_true",
        help="run the no-plugin runs again instead of reusing cached ones",
    )
    parser.add_argument(
        "--repeat-baseline",
        type=int,
        default=1,
        metavar="N",
        help="no-plugin runs per suite; tests that differ among them are flaky",
    )
    parser.add_argument(
        "--extra-args",
        default="",
        metavar="ARGS",
        help="pytest arguments for both runs, e.g. '-x' or '--timeout-method=thread'",
    )
    parser.add_argument(
        "--leakguard-args",
        default="",
        metavar="ARGS",
        help="pytest arguments for the leakguard run only, e.g. '-o leakguard_grace=0.2' "
        "(leakguard's ini keys are unknown to a no-plugin run: --strict-config suites reject them)",
    )
    parser.add_argument(
        "--timing-pairs",
        type=int,
        default=0,
        metavar="N",
        help="then N more runs without and with leakguard, in turn: the median ratio and its "
        "range (one pair on a shared machine is not a measurement)",
    )
    parser.add_argument("--timeout", type=int, default=60, help="pytest-timeout per test (s)")
    parser.add_argument("--out", type=Path, help="write the raw data as JSON here")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="print the table of an earlier --out, run nothing",
    )
    return parser.parse_args(argv)


def note(text: str) -> None:
    print(f"[realsuites {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _baselines(
    args: argparse.Namespace, suite: Suite, python: Path, home: Path, extra: list[str]
) -> list[RunMeta]:
    key = baseline_key(suite, recipe_key(suite, REPO), extra, args.timeout)
    metas = []
    for i in range(args.repeat_baseline):
        stem = f"baseline-{key}-{i}"
        meta = None if args.rerun_baseline else cached(home, stem)
        if meta is None:
            note(f"{suite.name}: no-plugin run {i + 1}/{args.repeat_baseline}")
            meta = run(
                python,
                suite,
                home,
                source_dir(suite, home),
                site_packages(home / "venv"),
                "baseline",
                stem,
                extra,
                args.timeout,
            )
        else:
            note(f"{suite.name}: reusing no-plugin run {i + 1} ({meta.wall:.0f} s)")
        metas.append(meta)
    return metas


def _brief(meta: dict[str, Any]) -> dict[str, Any]:
    # A continued run names every remaining test on its command line: keep the JSON readable.
    cmd = meta["command"]
    if len(cmd) > COMMAND_KEPT:
        meta["command"] = [*cmd[:COMMAND_KEPT], f"… and {len(cmd) - COMMAND_KEPT} more"]
    return meta


def run_suite(args: argparse.Namespace, suite: Suite) -> dict[str, Any]:
    home = args.workdir / suite.name
    result: dict[str, Any] = {"suite": suite.name, "version": suite.version}
    note(f"{suite.name}: setting up {suite.package}=={suite.version}")
    try:
        python = ensure(suite, home, REPO)
    except SetupError as exc:
        return {**result, "error": str(exc)}
    extra = shlex.split(args.extra_args)
    bases = _baselines(args, suite, python, home, extra)
    note(f"{suite.name}: leakguard run")
    base_runs = [read_run(Path(m.records)) for m in bases]
    order = list(base_runs[0].tests)
    both = [*extra, *shlex.split(args.leakguard_args)]
    guarded = guarded_run(python, suite, home, both, args.timeout, order)
    comparison = compare(suite, base_runs, guarded.run)
    wall = sum(m.wall for m in guarded.metas)
    pairs = []
    if args.timing_pairs:
        note(f"{suite.name}: {args.timing_pairs} timing pairs")
        pairs = timing_pairs(python, suite, home, extra, both, args.timeout, args.timing_pairs)
    note(
        f"{suite.name}: {comparison.tests} tests, {len(comparison.changed)} changed, "
        f"{len(guarded.findings)} flagged owners, {bases[0].wall:.0f} s / {wall:.0f} s"
    )
    return {
        **result,
        "note": suite.note,
        "left_out": [
            *([(f"-k {suite.keyword[0]}", suite.keyword[1])] if suite.keyword else []),
            *([(f"-m {suite.marks[0]}", suite.marks[1])] if suite.marks else []),
            *suite.deselect,
            *suite.ignore,
        ],
        "tests": comparison.tests,
        "changed": [asdict(c) for c in comparison.changed],
        "flaky": [asdict(c) for c in comparison.flaky],
        "flagged_tests": comparison.flagged_tests,
        "findings": guarded.findings,
        "flag_groups": flag_groups(guarded.findings),
        "problems": guarded.problems,
        "collect_errors": {
            "without": base_runs[0].collect_errors,
            "with": guarded.run.collect_errors,
        },
        "aborts": guarded.aborts,
        "baseline_runs": [asdict(m) for m in bases],
        "timing_pairs": pairs,
        "leakguard_runs": [_brief(asdict(m)) for m in guarded.metas],
        "freeze": (home / "freeze.txt").read_text(encoding="utf-8").splitlines(),
    }


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return done.stdout.strip()


def header(args: argparse.Namespace) -> list[str]:
    # The last commit that touched leakguard/: benchmark-only commits do not change what ran.
    commit = _git("log", "-1", "--format=%h", "--", "leakguard")
    dirty = _git("status", "--porcelain", "leakguard")
    state = " (uncommitted changes in leakguard/)" if dirty else ""
    with_flags = f"--leakguard {args.leakguard_args}".strip()
    return [
        f"## Real suites, {time.strftime('%Y-%m-%d')}: leakguard {commit}{state}",
        "",
        f"Python {platform.python_version()}, {os.cpu_count()} cores; per-test timeout "
        f"{args.timeout} s; no-plugin runs per suite: {args.repeat_baseline}; "
        f"timing pairs per suite: {args.timing_pairs}; "
        f"extra args: `{args.extra_args or '(none)'}`. Both runs: `-p no:randomly "
        f"-p no:cacheprovider -q`; without: `-p no:leakguard`; with: `{with_flags}`, and "
        "in the outcome run (not the timing pairs) `--leakguard-report` to gather findings.",
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for s in SUITES:
            print(f"{s.name:10} {s.package}=={s.version} ({s.layout}) {s.note}")
        return 0
    if args.render:
        saved = json.loads(args.render.read_text(encoding="utf-8"))
        print(render(saved["suites"], saved["header"]))
        return 0
    results = [run_suite(args, suite) for suite in by_name(args.suite)]
    text = render(results, header(args))
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        data = {"header": header(args), "suites": results}
        args.out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

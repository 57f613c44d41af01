"""What leakguard adds to each test: N empty tests, with no plugin and with each tracker on.

Run:  python benchmarks/overhead.py [--n 2000] [--rounds 5] [--only NAME ...]
          [--part loop|engine|startup|startup-wheel|peers ...] [--startup-rounds 21]

Each run times pytest's test loop only (``pytest_runtestloop``, start to end, in CPU time of
the pytest process, which other load disturbs far less than wall time), so interpreter
start-up and collection do not dilute the per-test figure.
Rows show the median over rounds of µs per test, the µs leakguard adds over the same files
run with ``-p no:leakguard``, the ratio of the two totals, and the *floor*: the raw cost of
the tracker's two ``snapshot()`` calls per test measured in this process. "added / floor"
is what the plugin machinery costs on top of the primitives themselves.

Two whole-run tables (`wholerun`, CPU time of the whole pytest process): the start-up row (a
one-test run with no plugin, leakguard installed and off, threads only, all six trackers, and
pytest-threadleak: ms added), and pytest-threadleak side by side (200 and 2,000 empty tests:
slope per test and intercept). pytest-threadleak must be installed for those. The start-up
row is also taken from a wheel install in a fresh virtual environment (``startup-wheel``):
this environment's other plugins may import what leakguard would (asyncio), which flatters it.

A last table times leakguard's own clean path (a test's begin + end) in-process, without
pytest: the stable part of the cost, for machines where whole-run figures are noisy.

Scenario files ``benchmarks/scenarios_*.py`` add rows: ``SCENARIOS`` (dicts with ``name``,
``args``, optional ``test_source``, ``conftest``, ``baseline_args``) and ``FLOORS``
(``{name: callable() -> µs per test}``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    from benchmarks import wholerun
except ImportError:  # run as a script: this folder is on sys.path
    import wholerun  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
PARTS = ["loop", "startup", "startup-wheel", "peers", "engine"]

EMPTY_TESTS = """
import os
import pytest

N = int(os.environ["LEAKGUARD_BENCH_N"])

@pytest.mark.parametrize("i", range(N))
def test_empty(i):
    pass
"""

LOOP_TIMER = """
import json, os, time
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session):
    # CPU time of this process: what leakguard costs, and far less disturbed than wall time
    # by whatever else the machine runs.
    start = time.process_time()
    try:
        return (yield)
    finally:
        elapsed = time.process_time() - start
        with open(os.environ["LEAKGUARD_BENCH_OUT"], "w") as f:
            json.dump({"seconds": elapsed, "tests": session.testscollected}, f)
"""

COMMON = ["-q", "-p", "no:cacheprovider", "-p", "benchtimer", "-o", "leakguard_grace=0"]
TRACKERS = ["threads", "tasks", "processes", "sockets", "ports", "fds"]


def builtin_scenarios() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"name": "installed, off", "args": []},
        {"name": "engine, no trackers", "args": ["--leakguard", "-o", "leakguard_trackers="]},
    ]
    rows += [
        {"name": name, "args": ["--leakguard", "-o", f"leakguard_trackers={name}"]}
        for name in TRACKERS
    ]
    rows.append({"name": "all six", "args": ["--leakguard"], "floor": TRACKERS})
    if importlib.util.find_spec("pytest_threadleak") is not None:
        # The peer people would pick for threads, against its own plugin-free baseline.
        rows.append(
            {
                "name": "pytest-threadleak (peer)",
                "args": ["-p", "no:leakguard", "--threadleak"],
                "baseline_args": ["-p", "no:threadleak"],
            }
        )
    return rows


def load_extensions() -> tuple[list[dict[str, Any]], dict[str, Callable[[], float]]]:
    scenarios: list[dict[str, Any]] = []
    floors: dict[str, Callable[[], float]] = {}
    for path in sorted(HERE.glob("scenarios_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        scenarios += getattr(module, "SCENARIOS", [])
        floors.update(getattr(module, "FLOORS", {}))
    return scenarios, floors


def tracker_floor(names: list[str]) -> float | None:
    """µs for two raw ``snapshot()`` calls of these trackers, in this process."""
    from leakguard.core.registry import TrackerRegistry
    from leakguard.core.tracker import Phase

    registry = TrackerRegistry.default()
    trackers = []
    for name in names:
        try:
            tracker = registry.create(name)
            tracker.install()
        except Exception:
            return None
        trackers.append(tracker)

    def both() -> None:
        for tracker in trackers:
            tracker.snapshot(Phase("after", 1.0))
            tracker.snapshot(Phase("after", 1.0))

    number = 2000
    best = min(timeit.repeat(both, number=number, repeat=5)) / number
    for tracker in trackers:
        tracker.uninstall()
    return best * 1e6


def engine_path(trackers: tuple[str, ...]) -> float:
    """µs per test for leakguard's own clean path (begin + end of a test), outside pytest.

    No pytest, no hook dispatch, no other process: stable where whole-run figures are noisy.
    """
    from leakguard.core.engine import Engine
    from leakguard.core.registry import TrackerRegistry
    from leakguard.core.runstate import Run
    from leakguard.core.settings import Settings

    run = Run(Engine(TrackerRegistry.default()))
    run.engine.activate(trackers)
    settings = Settings(trackers=trackers, grace=0.0)

    def one_test() -> None:
        run.end_test(run.begin_test("bench::test", settings))

    one_test()
    best = min(timeit.repeat(one_test, number=5000, repeat=7)) / 5000
    run.engine.close()
    return best * 1e6


def print_engine_paths() -> None:
    print()
    print("leakguard's own clean path per test (begin + end, in-process, best of 7 × 5000):")
    rows: list[tuple[str, tuple[str, ...]]] = [("engine, no trackers", ())]
    rows += [(name, (name,)) for name in TRACKERS]
    rows.append(("all six", tuple(TRACKERS)))
    for label, trackers in rows:
        print(f"  {label:<32} {engine_path(trackers):6.1f} µs")


def run_once(folder: Path, args: list[str], n: int) -> float:
    out = folder / "timing.json"
    env = dict(os.environ, LEAKGUARD_BENCH_N=str(n), LEAKGUARD_BENCH_OUT=str(out))
    env["PYTHONPATH"] = os.pathsep.join([str(folder), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *COMMON, *args, str(folder / "test_bench.py")],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 1):
        tail = f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        raise SystemExit(f"benchmark run failed ({args}):\n{tail}")
    data = json.loads(out.read_text())
    return float(data["seconds"]) / max(int(data["tests"]), 1) * 1e6


def prepare(root: Path, scenario: dict[str, Any]) -> Path:
    key = str(abs(hash((scenario.get("test_source"), scenario.get("conftest")))))
    folder = root / key
    if not folder.exists():
        folder.mkdir()
        (folder / "benchtimer.py").write_text(LOOP_TIMER)
        (folder / "test_bench.py").write_text(scenario.get("test_source") or EMPTY_TESTS)
        (folder / "conftest.py").write_text(scenario.get("conftest") or "")
        (folder / "pytest.ini").write_text("[pytest]\n")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=2000, help="empty tests per run (default 2000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; median shown (default 5)")
    parser.add_argument("--only", nargs="*", help="only scenarios whose name contains one of these")
    parser.add_argument(
        "--part",
        action="append",
        choices=PARTS,
        help="run only these tables (repeatable; default: all)",
    )
    parser.add_argument(
        "--startup-rounds", type=int, default=21, help="one-test runs per case (default 21)"
    )
    opts = parser.parse_args()
    parts = opts.part or PARTS
    if "loop" in parts:
        loop_table(opts)
    with tempfile.TemporaryDirectory(prefix="leakguard-bench-") as tmp:
        if "startup" in parts:
            wholerun.startup(Path(tmp), opts.startup_rounds)
        if "startup-wheel" in parts:
            python = wholerun.wheel_install(Path(tmp))
            wheel = Path(tmp) / "wheel"
            wheel.mkdir()
            where = " from a wheel install (pytest, psutil, pytest-threadleak only)"
            wholerun.startup(wheel, opts.startup_rounds, python=python, where=where)
        if "peers" in parts:
            wholerun.peers(Path(tmp), opts.rounds)
    if "engine" in parts:
        print_engine_paths()


def loop_table(opts: argparse.Namespace) -> None:
    extra, floors = load_extensions()
    scenarios = builtin_scenarios() + extra
    if opts.only:
        scenarios = [s for s in scenarios if any(word in s["name"] for word in opts.only)]

    with tempfile.TemporaryDirectory(prefix="leakguard-bench-") as tmp:
        root = Path(tmp)
        samples: dict[str, list[float]] = {}
        baselines: dict[tuple[Path, tuple[str, ...]], list[float]] = {}
        for _ in range(opts.rounds):
            for scenario in scenarios:
                folder = prepare(root, scenario)
                base_args = tuple(scenario.get("baseline_args", ()))
                base_key = (folder, base_args)
                # Interleave baseline and scenario runs so machine noise hits both alike.
                base_run = run_once(folder, ["-p", "no:leakguard", *base_args], opts.n)
                baselines.setdefault(base_key, []).append(base_run)
                run = run_once(folder, list(scenario["args"]), opts.n)
                samples.setdefault(scenario["name"], []).append(run)

        version = sys.version.split()[0]
        print(f"leakguard overhead: {opts.n} tests/run, median of {opts.rounds}, Python {version}")
        header = (
            f"{'scenario':<34} {'µs/test':>9} {'no plugin':>10} {'added µs':>9} {'ratio':>7} "
            f"{'floor µs':>9} {'added/floor':>12}"
        )
        print(header)
        print("-" * len(header))
        for scenario in scenarios:
            folder = prepare(root, scenario)
            base = statistics.median(baselines[(folder, tuple(scenario.get("baseline_args", ())))])
            value = statistics.median(samples[scenario["name"]])
            added = value - base
            name = scenario["name"]
            floor_names = scenario.get("floor") or ([name] if name in TRACKERS else [])
            floor: float | None = None
            if scenario["name"] in floors:
                floor = floors[scenario["name"]]()
            elif floor_names:
                floor = tracker_floor(floor_names)
            floor_text = f"{floor:9.1f}" if floor is not None else f"{'-':>9}"
            ratio_floor = f"{added / floor:12.1f}" if floor else f"{'-':>12}"
            print(
                f"{name:<34} {value:9.1f} {base:10.1f} {added:9.1f} {value / base:7.2f} "
                f"{floor_text} {ratio_floor}"
            )


if __name__ == "__main__":
    main()

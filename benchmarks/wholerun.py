"""Whole-run figures: what a one-test run pays at start-up, and per-test slope and intercept
side by side with pytest-threadleak (issue 11, item 6).

Each figure is the CPU time (user + system) of the whole pytest process, interpreter start-up
included, read from ``getrusage(RUSAGE_CHILDREN)``: on a shared machine wall time swings by
tens of ms between two identical runs, CPU time far less. The median over rounds is shown.
Bytecode is written and reused (``PYTHONDONTWRITEBYTECODE`` is dropped for the runs, and one
warm-up run per case compiles): an installed package has its ``.pyc`` files, and compiling
leakguard's sources on every run would triple its import cost.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ONE_TEST = "def test_one():\n    pass\n"

MANY_TESTS = """
import os
import pytest

@pytest.mark.parametrize("i", range(int(os.environ["LEAKGUARD_BENCH_N"])))
def test_empty(i):
    pass
"""

RUN_ARGS = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
NO_PLUGIN = ["-p", "no:leakguard", "-p", "no:threadleak"]
THREADLEAK = ["-p", "no:leakguard", "--threadleak"]
THREADS_ONLY = ["-p", "no:threadleak", "--leakguard", "-o", "leakguard_trackers=threads"]
ALL_SIX = ["-p", "no:threadleak", "--leakguard"]


@dataclass(frozen=True)
class Case:
    name: str
    args: list[str]


STARTUP_CASES = [
    Case("no plugin", NO_PLUGIN),
    Case("leakguard installed, off", ["-p", "no:threadleak"]),
    Case("leakguard, threads only", THREADS_ONLY),
    Case("leakguard, all six", ALL_SIX),
    Case("pytest-threadleak", THREADLEAK),
]
PEER_CASES = [
    Case("no plugin", NO_PLUGIN),
    Case("pytest-threadleak", THREADLEAK),
    Case("leakguard, threads only", THREADS_ONLY),
    Case("leakguard, all six", ALL_SIX),
]


def _env(n: int) -> dict[str, str]:
    env = dict(os.environ, LEAKGUARD_BENCH_N=str(n))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_cpu(
    folder: Path, args: list[str], n: int = 1, python: str = sys.executable
) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one whole pytest run in ``folder``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [python, "-m", "pytest", *RUN_ARGS, *args],
        cwd=folder,
        env=_env(n),
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({args}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def _folder(root: Path, name: str, source: str) -> Path:
    folder = root / name
    folder.mkdir(exist_ok=True)
    (folder / "test_bench.py").write_text(source)
    (folder / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return folder


def startup(root: Path, rounds: int, python: str = sys.executable, where: str = "") -> None:
    """One-test runs: what each case adds to the whole run, in ms."""
    folder = _folder(root, "startup", ONE_TEST)
    cpu: dict[str, list[float]] = {case.name: [] for case in STARTUP_CASES}
    wall: dict[str, list[float]] = {case.name: [] for case in STARTUP_CASES}
    for case in STARTUP_CASES:
        run_cpu(folder, case.args, python=python)  # warm-up: bytecode written, page cache
    for _ in range(rounds):
        for case in STARTUP_CASES:  # interleaved, so load on the machine hits all alike
            c, w = run_cpu(folder, case.args, python=python)
            cpu[case.name].append(c)
            wall[case.name].append(w)
    base_cpu = statistics.median(cpu["no plugin"])
    base_wall = statistics.median(wall["no plugin"])
    print()
    print(f"start-up{where}: a one-test run, CPU time of the whole process, median of {rounds}")
    header = f"{'case':<28} {'CPU ms':>8} {'added ms':>9} {'wall ms':>8} {'added ms':>9}"
    print(header)
    print("-" * len(header))
    for case in STARTUP_CASES:
        c = statistics.median(cpu[case.name]) * 1e3
        w = statistics.median(wall[case.name]) * 1e3
        print(
            f"{case.name:<28} {c:8.1f} {c - base_cpu * 1e3:+9.1f} {w:8.1f} "
            f"{w - base_wall * 1e3:+9.1f}"
        )


def peers(root: Path, rounds: int, small: int = 200, large: int = 2000) -> None:
    """Per-test slope and intercept from runs of ``small`` and ``large`` empty tests."""
    folder = _folder(root, "peers", MANY_TESTS)
    samples: dict[tuple[str, int], list[float]] = {}
    for case in PEER_CASES:
        run_cpu(folder, case.args, small)  # warm-up
    for _ in range(rounds):
        for n in (small, large):
            for case in PEER_CASES:
                samples.setdefault((case.name, n), []).append(run_cpu(folder, case.args, n)[0])
    print()
    print(
        f"side by side: {small} and {large} empty tests, CPU time of the whole process, "
        f"median of {rounds}; slope = per test, intercept = the rest (start-up, collection setup)"
    )
    header = f"{'case':<28} {'slope µs':>9} {'added µs':>9} {'intercept ms':>13} {'added ms':>9}"
    print(header)
    print("-" * len(header))
    fits: dict[str, tuple[float, float]] = {}
    for case in PEER_CASES:
        t_small = statistics.median(samples[case.name, small])
        t_large = statistics.median(samples[case.name, large])
        slope = (t_large - t_small) / (large - small)
        fits[case.name] = (slope, t_small - small * slope)
    base_slope, base_icpt = fits["no plugin"]
    for case in PEER_CASES:
        slope, icpt = fits[case.name]
        print(
            f"{case.name:<28} {slope * 1e6:9.1f} {(slope - base_slope) * 1e6:+9.1f} "
            f"{icpt * 1e3:13.1f} {(icpt - base_icpt) * 1e3:+9.1f}"
        )


def wheel_install(root: Path) -> str:
    """A fresh virtual environment with leakguard installed from this checkout as a wheel, and
    pytest-threadleak: what a user's environment has, without the dev extra's plugins (which
    import asyncio, say, before leakguard would). Returns its Python."""
    venv = root / "wheel-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    checkout = Path(__file__).resolve().parent.parent
    subprocess.run(
        [python, "-m", "pip", "install", "-q", str(checkout), "pytest-threadleak"],
        check=True,
        env={k: v for k, v in os.environ.items() if k != "PIP_REQUIRE_VIRTUALENV"},
    )
    return python

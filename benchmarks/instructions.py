"""Instructions, not seconds: what leakguard adds per test and at start-up, counted by valgrind.

Run:  python benchmarks/instructions.py [--small 200] [--large 1000] [--jobs 2] [--only NAME ...]

On a shared or virtual machine the CPU time of two identical runs differs by ±20 µs per test,
more than the costs being compared (issue 11: threads only against pytest-threadleak). The
number of instructions a run executes does not drift: two identical runs under valgrind's
cachegrind (``--cache-sim=no``) agree to within 0.001 %. Each case runs ``--small`` and
``--large`` empty tests; the table gives the slope (instructions per test added over no plugin)
and the intercept (instructions of a run with no test, added: start-up and shutdown).

Instructions are not time (cache misses and system calls count as one instruction each), so
read the table for what changed and by how much, and the wall-clock tables
(``benchmarks/overhead.py``) for what it costs in time. As a rough scale on this project's
machines, an empty test under pytest runs ≈ 2.5 M instructions in ≈ 420 µs.

Each case is counted twice: as users run it, and with the garbage collector off
(``--gc off``; ``gc.disable()`` before pytest is imported). The first is the true total, but
not a smooth one: a full collection walks the whole heap, and whether the 200-test or the
1,000-test run sets off one more of them moves a slope by ±15,000 instructions a test with no
change in the code (leakguard installed and off read +16k a test with the collector on, −4k
with it off). The second counts the code alone and is what to compare two versions by.

Needs ``valgrind`` on PATH; pytest-threadleak is measured when installed. Hash randomisation is
fixed (``PYTHONHASHSEED=0``) and pytest-randomly turned off, so every run does the same work.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MANY_TESTS = """
import os
import pytest

@pytest.mark.parametrize("i", range(int(os.environ["LEAKGUARD_BENCH_N"])))
def test_empty(i):
    pass
"""

RUN_ARGS = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
CASES: dict[str, list[str]] = {
    "no plugin": ["-p", "no:leakguard", "-p", "no:threadleak"],
    "leakguard installed, off": ["-p", "no:threadleak"],
    "leakguard, threads only": [
        "-p",
        "no:threadleak",
        "--leakguard",
        "-o",
        "leakguard_trackers=threads",
    ],
    "leakguard, all six": ["-p", "no:threadleak", "--leakguard"],
    "pytest-threadleak": ["-p", "no:leakguard", "--threadleak"],
}
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


GC_OFF = "import gc, sys; gc.disable(); import pytest; raise SystemExit(pytest.console_main())"
"""pytest's console entry point with automatic collection off (leakguard leaves it as found)."""


def count(folder: Path, args: list[str], n: int, gc_on: bool = True) -> int:
    """Instructions executed by one whole pytest run of ``n`` empty tests."""
    out = folder / f"cachegrind.{os.getpid()}.{n}.{gc_on}.{abs(hash(tuple(args)))}"
    start = ["-m", "pytest"] if gc_on else ["-c", GC_OFF]
    env = dict(os.environ, LEAKGUARD_BENCH_N=str(n), PYTHONHASHSEED="0")
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its .pyc files
    proc = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            f"--cachegrind-out-file={out}",
            sys.executable,
            *start,
            *RUN_ARGS,
            *args,
            "test_many.py",
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    out.unlink(missing_ok=True)
    found = _REFS.search(proc.stderr)
    if proc.returncode not in (0, 1) or found is None:
        tail = f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        raise SystemExit(f"run failed ({args}, {n} tests):\n{tail}")
    return int(found.group(1).replace(",", ""))


def warm_up(folder: Path, args: list[str]) -> None:
    """One plain run per case first, so every module's bytecode is on disk (not compiled in a
    counted run)."""
    env = dict(os.environ, LEAKGUARD_BENCH_N="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(
        [sys.executable, "-m", "pytest", *RUN_ARGS, *args, "test_many.py"],
        cwd=folder,
        env=env,
        capture_output=True,
        check=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=200, help="tests in the small run")
    parser.add_argument("--large", type=int, default=1000, help="tests in the large run")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs at once")
    parser.add_argument("--only", nargs="*", help="only cases whose name contains one of these")
    parser.add_argument(
        "--gc",
        choices=["both", "on", "off"],
        default="both",
        help="count with the garbage collector on (as users run), off (the code alone), or both",
    )
    opts = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not on PATH (Debian/Ubuntu: apt install valgrind)")
    cases = dict(CASES)
    if importlib.util.find_spec("pytest_threadleak") is None:
        del cases["pytest-threadleak"]
    if opts.only:
        keep = {name for name in cases if any(word in name for word in opts.only)}
        cases = {name: args for name, args in cases.items() if name in keep or name == "no plugin"}

    with tempfile.TemporaryDirectory(prefix="leakguard-instructions-") as tmp:
        folder = Path(tmp)
        (folder / "test_many.py").write_text(MANY_TESTS)
        (folder / "pytest.ini").write_text("[pytest]\n")
        for args in cases.values():
            warm_up(folder, args)
        small, large = int(opts.small), int(opts.large)
        modes = {"both": (True, False), "on": (True,), "off": (False,)}[opts.gc]
        jobs = [(name, n, gc_on) for gc_on in modes for name in cases for n in (small, large)]
        with ThreadPoolExecutor(max_workers=max(opts.jobs, 1)) as pool:

            def run(job: tuple[str, int, bool]) -> int:
                return count(folder, cases[job[0]], job[1], job[2])

            counts = dict(zip(jobs, pool.map(run, jobs), strict=True))

    version = sys.version.split()[0]
    for gc_on in modes:

        def slope(name: str, gc_on: bool = gc_on) -> float:
            return (counts[name, large, gc_on] - counts[name, small, gc_on]) / (large - small)

        def intercept(name: str, gc_on: bool = gc_on) -> float:
            return counts[name, small, gc_on] - slope(name) * small

        base_slope, base_intercept = slope("no plugin"), intercept("no plugin")
        print(
            f"Instructions (valgrind cachegrind), runs of {small} and {large} empty tests, "
            f"Python {version}, garbage collector {'on' if gc_on else 'off'}"
        )
        header = f"{'case':<28} {'per test':>12} {'added':>10} {'start-up added':>16}"
        print(header)
        print("-" * len(header))
        for name in cases:
            added = slope(name) - base_slope
            startup = (intercept(name) - base_intercept) / 1e6
            print(f"{name:<28} {slope(name):12,.0f} {added:+10,.0f} {startup:+14.1f} M")
        print()


if __name__ == "__main__":
    main()

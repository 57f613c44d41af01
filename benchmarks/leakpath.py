"""What a flagged test costs against a clean one, with default settings (issue 11, item 7).

Run:  python benchmarks/leakpath.py [--n 20] [--rounds 3] [--heap 100000] [-- EXTRA PYTEST ARGS]

One generated test file, its tests interleaved by kind: each leaks one descriptor (a file), one
socket (a connection to a module fixture's listener), one listening port, one selector (an
epoll, whose owner the collector does not list), one thread that ends 5 ms after the test, one
garbage-only cycle (a selector dropped in a reference cycle, young or already in the oldest
generation), or nothing (the clean test). ``--heap``: the test module also keeps that many
small dicts and lists, for a heap the size of a big suite's (the leak path's searches walk it).
Each test's whole protocol (setup, call, teardown with leakguard's check, grace and cleanup) is
timed in the pytest process; the table shows the median per kind in ms (wall time: the grace
period is waiting), what it adds over the clean test, the ratio, the same in CPU time of the
pytest process (what other load on a shared machine disturbs far less; a grace wait is not
CPU), and what leakguard concluded (from its JSON report).

Goal from the issue: a flagged test whose leaks cannot end by themselves (fd, socket, port,
garbage) costs at most ~20 ms more than a clean test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

KINDS = [
    "clean",
    "fd",
    "socket",
    "port",
    "selector",
    "thread 5 ms",
    "garbage (young)",
    "garbage (old)",
]

TESTS = """
import gc
import os
import selectors
import socket
import threading
import time

import pytest

KEEP = []  # a module global of the user's: what it holds is the test's leak
# A heap of the size a big suite has (the owner and holder searches walk all of it).
BALLAST = [{{"n": [n]}} for n in range(int(os.environ["LEAKPATH_HEAP"]))]
CASES = [(i, kind) for i in range(int(os.environ["LEAKPATH_N"])) for kind in {kinds!r}]


@pytest.fixture(scope="module")
def listener():
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()
    server.close()


def _cycle(promote):
    holder = {{"selector": selectors.DefaultSelector()}}
    holder["self"] = holder
    if promote:
        gc.collect(1)  # still reachable here: moved to the oldest generation
    return holder


@pytest.mark.parametrize(("i", "kind"), CASES, ids=[f"{{k}}-{{i}}" for i, k in CASES])
def test_case(i, kind, listener):
    if kind == "fd":
        KEEP.append(open(os.devnull))
    elif kind == "socket":
        KEEP.append(socket.create_connection(listener))
    elif kind == "port":
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        KEEP.append(server)
    elif kind == "selector":  # an epoll: its owner is not in the collector's list
        KEEP.append(selectors.DefaultSelector())
    elif kind == "thread 5 ms":
        threading.Thread(target=time.sleep, args=(0.005,)).start()
    elif kind.startswith("garbage"):
        _cycle(promote=kind == "garbage (old)")
"""

TIMER = """
import json, os, time
import pytest

TIMES = {}

@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        return (yield)
    finally:
        TIMES[item.nodeid] = (time.perf_counter() - wall, time.process_time() - cpu)

def pytest_unconfigure(config):
    with open(os.environ["LEAKPATH_OUT"], "w") as f:
        json.dump(TIMES, f)
"""


def kind_of(nodeid: str) -> str:
    return nodeid.rpartition("[")[2].rstrip("]").rpartition("-")[0]


Samples = dict[str, list[tuple[float, float]]]


def run(folder: Path, n: int, heap: int, extra: list[str]) -> tuple[Samples, Counter[str]]:
    out = folder / "times.json"
    report = folder / "leakguard.json"
    env = dict(os.environ, LEAKPATH_N=str(n), LEAKPATH_OUT=str(out), LEAKPATH_HEAP=str(heap))
    env["PYTHONPATH"] = os.pathsep.join([str(folder), env.get("PYTHONPATH", "")])
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    cmd += ["-p", "leakpath_timer", "--leakguard", f"--leakguard-report={report}", *extra]
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, check=False)
    if proc.returncode not in (0, 1) or not out.exists():
        raise SystemExit(f"run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    times: Samples = {}
    for nodeid, (wall, cpu) in json.loads(out.read_text()).items():
        times.setdefault(kind_of(nodeid), []).append((wall, cpu))
    verdicts: Counter[str] = Counter()
    data = json.loads(report.read_text()) if report.exists() else {}
    for finding in data.get("findings", data.get("leaks", [])):
        owner = finding.get("owner", "")
        if "[" in owner:
            verdicts[f"{kind_of(owner)}/{finding.get('kind', 'leak')}"] += 1
    return times, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20, help="tests of each kind per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs; all tests pooled")
    parser.add_argument(
        "--heap", type=int, default=0, help="objects the test module adds to the heap (×2)"
    )
    parser.add_argument("extra", nargs="*", help="extra pytest arguments (after --)")
    opts = parser.parse_args()
    samples: Samples = {}
    verdicts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="leakguard-leakpath-") as tmp:
        folder = Path(tmp)
        (folder / "test_leakpath.py").write_text(TESTS.format(kinds=KINDS))
        (folder / "leakpath_timer.py").write_text(TIMER)
        (folder / "pytest.ini").write_text("[pytest]\n")
        for _ in range(opts.rounds):
            times, found = run(folder, opts.n, opts.heap, opts.extra)
            for kind, values in times.items():
                samples.setdefault(kind, []).extend(values)
            verdicts.update(found)
    clean = statistics.median(w for w, _ in samples["clean"]) * 1e3
    clean_cpu = statistics.median(c for _, c in samples["clean"]) * 1e3
    runs = opts.n * opts.rounds
    print(
        f"leak path: {opts.n} tests of each kind per run, {opts.rounds} runs, "
        f"{2 * opts.heap:,} objects added to the heap, default settings "
        f"{' '.join(opts.extra)}; median ms per test (wall, whole protocol)"
    )
    header = (
        f"{'test':<18} {'ms/test':>8} {'added ms':>9} {'ratio':>6} {'CPU ms':>7} {'added':>7}"
        f"  concluded (of {runs})"
    )
    print(header)
    print("-" * len(header))
    for kind in KINDS:
        value = statistics.median(w for w, _ in samples[kind]) * 1e3
        cpu = statistics.median(c for _, c in samples[kind]) * 1e3
        seen = ", ".join(
            f"{what.partition('/')[2]} {count}"
            for what, count in sorted(verdicts.items())
            if what.partition("/")[0] == kind
        )
        print(
            f"{kind:<18} {value:8.2f} {value - clean:+9.2f} {value / clean:6.2f} {cpu:7.2f} "
            f"{cpu - clean_cpu:+7.2f}  {seen or 'nothing'}"
        )


if __name__ == "__main__":
    main()

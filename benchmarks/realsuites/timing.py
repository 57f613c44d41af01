"""Interleaved timing pairs: the overhead ratio from several (without, with) runs in turn.

One pair on a shared VM is not a measurement: the same no-plugin run took 9.5 s and 12.3 s an
hour apart on the machine these figures come from. Runs in turn, each pair close in time, give
a median ratio and its spread; the outcome comparison stays with the first, recorded pair.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from .runner import run
from .suites import Suite
from .venvs import site_packages, source_dir


def timing_pairs(
    python: Path,
    suite: Suite,
    home: Path,
    extra: list[str],
    leakguard_extra: list[str],
    timeout: int,
    pairs: int,
) -> list[dict[str, Any]]:
    """``pairs`` more runs without and with leakguard, in turn: wall and CPU seconds of each.
    Odd pairs run leakguard first (ABBA), so a drift of the machine's speed during the runs
    does not count for or against it.

    With leakguard as a user turns it on: ``--leakguard`` and ``leakguard_extra``, but no report
    file (it records a timeline of every test, an opt-in feature the outcome run needs).
    """
    site, cwd = site_packages(home / "venv"), source_dir(suite, home)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    found = []
    for i in range(pairs):
        timed = {}
        order = [("baseline", extra), ("leakguard", leakguard_extra)]
        if i % 2:  # in turn: a machine slowing down (or warming up) favours neither side
            order.reverse()
        for mode, args in order:
            stem = f"timing-{mode}-{stamp}-{i}"
            meta = run(
                python, suite, home, cwd, site, mode, stem, args, timeout, write_report=False
            )
            timed[mode] = {"wall": meta.wall, "cpu": meta.cpu, "exit_code": meta.exit_code}
        found.append({"without": timed["baseline"], "with": timed["leakguard"]})
    return found


def ratios(pairs: list[dict[str, Any]], measure: str) -> list[float]:
    return [p["with"][measure] / p["without"][measure] for p in pairs if p["without"][measure]]


def summary(pairs: list[dict[str, Any]], measure: str) -> str:
    """``1.08× (1.05–1.12)``: the median ratio of the pairs and its range; ``–`` without pairs."""
    found = ratios(pairs, measure)
    if not found:
        return "–"
    return f"{statistics.median(found):.2f}× ({min(found):.2f}–{max(found):.2f})"

"""The processes tests' shared parts: the pid recorder inner runs import, and how they run."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest

from tests.support.options import run_checked

RECORDER = """
import os, time, psutil

def record(pid, execs=None):
    \"\"\"Note a pid the test made, so the outer test can check it (and kill it) from outside.

    With ``execs``, first wait until the process runs that program: a shell's background job
    is a fork of the shell until it gets to exec, and a loaded machine can take a while.
    \"\"\"
    proc = psutil.Process(pid)
    deadline = time.monotonic() + 10
    while execs and proc.cmdline()[:1] != [execs] and time.monotonic() < deadline:
        time.sleep(0.005)
    with open({path!r}, "a") as f:
        f.write(f"{{pid}} {{proc.create_time()!r}}\\n")
    return pid
"""


class Spawned:
    """The processes an inner run recorded, as ``(pid, create_time)``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def recorded(self) -> list[tuple[int, float]]:
        if not self.path.exists():
            return []
        pairs = []
        for line in self.path.read_text().splitlines():
            pid, created = line.split()
            pairs.append((int(pid), float(created)))
        return pairs

    def survivors(self) -> list[psutil.Process]:
        """Recorded processes still running (a zombie waiting for init counts as gone)."""
        alive = []
        for pid, created in self.recorded():
            try:
                proc = psutil.Process(pid)
                if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
            except psutil.NoSuchProcess:
                continue
        return alive

    def kill_survivors(self) -> None:
        for proc in self.survivors():
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                continue
        # Not psutil.wait_procs: a killed orphan stays a zombie until init reaps it, and a
        # zombie is already gone for our purpose.
        deadline = time.monotonic() + 5
        while self.survivors() and time.monotonic() < deadline:
            time.sleep(0.01)


def run_processes(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run_checked(pytester, *args, trackers="processes")


def assert_leaked_and_stopped(
    result: pytest.RunResult, spawned: Spawned, lines: list[str], passed: int = 1, errors: int = 1
) -> None:
    """The inner run's leak is reported with ``lines`` and nothing it recorded survives."""
    result.assert_outcomes(passed=passed, errors=errors)
    result.stdout.fnmatch_lines(lines)
    assert spawned.survivors() == []

"""Helpers shared by the server tests (the ``state_dir`` fixture in conftest uses ``kill_if_same``)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil

from leakguard.servers import free_port, port_is_free


def kill_if_same(pid: int, create_time: float | None = None) -> None:
    """SIGKILL ``pid`` only if it is still the process with ``create_time`` (when given)."""
    if pid == os.getpid():
        return  # a forged record may name this very process
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        if create_time is None or proc.create_time() == create_time:
            proc.kill()


def running(pid: int, create_time: float) -> bool:
    """Still that process, and not a zombie waiting for a reaper."""
    try:
        proc = psutil.Process(pid)
        return proc.create_time() == create_time and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def answers(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        return bool(response.status == 200)


@contextlib.contextmanager
def unrelated_server(folder: Path) -> Iterator[tuple[psutil.Process, int]]:
    """A server leakguard did not start (think: a developer's dev server); stopped at the end."""
    port = free_port()
    popen = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while port_is_free(port) and time.monotonic() < deadline:
            time.sleep(0.01)
        yield psutil.Process(popen.pid), port
    finally:
        popen.kill()
        popen.wait()


def write_record(directory: Path, name: str, **fields: object) -> Path:
    """A server record as leakguard writes it, with ``fields`` overriding harmless defaults."""
    record: dict[str, object] = {
        "pid": 0,
        "create_time": 0.0,
        "pgid": 0,
        "run_id": "forged",
        "owner_pid": 0,
        "owner_create_time": 0.0,
        "name": name,
        "cmd": "x",
        "port": None,
        "started_at": 0.0,
        "members": [],
    }
    record.update(fields)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(record))
    return path


def dead_identity() -> tuple[int, float]:
    """(pid, create time) of a process that has exited and been reaped."""
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = (finished.pid, psutil.Process(finished.pid).create_time())
    finished.wait()
    return identity

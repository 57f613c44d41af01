"""The per-run record of servers leakguard started, and the sweep of those a dead run left behind.

One JSON file per server: the server's identity (pid, create time, pgid, known members) and its
owner's (the process that started it). A later run stops a recorded server only if the owner is
gone and the server's own identity still matches — never anything found by port or by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from leakguard.servers.procgroup import ProcessGroup
from leakguard.servers.statedir import state_dir

Identity = tuple[int, float]


@dataclass(frozen=True)
class ServerRecord:
    pid: int
    create_time: float
    pgid: int
    run_id: str
    owner_pid: int
    owner_create_time: float
    name: str
    cmd: str
    port: int | None
    started_at: float
    members: list[Identity] = field(default_factory=list)

    @property
    def filename(self) -> str:
        return f"{self.pid}-{self.create_time:.2f}.json"

    def describe(self) -> str:
        port = f" on port {self.port}" if self.port is not None else ""
        return f"server {self.name!r} pid {self.pid}{port} (run {self.run_id})"


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def records_dir() -> Path:
    return state_dir("servers")


def write(record: ServerRecord, directory: Path | None = None) -> Path:
    directory = directory or records_dir()
    path = directory / record.filename
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)))
    os.replace(tmp, path)  # atomic: a sweep never reads half a record
    return path


def remove(record: ServerRecord, directory: Path | None = None) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink((directory or records_dir()) / record.filename)


def read_all(directory: Path | None = None) -> list[tuple[Path, ServerRecord | None]]:
    directory = directory or records_dir()
    found: list[tuple[Path, ServerRecord | None]] = []
    for path in sorted(directory.glob("*.json")):
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            data["members"] = [(int(pid), float(ctime)) for pid, ctime in data.get("members", [])]
            record = ServerRecord(**data)
        except (OSError, ValueError, TypeError):
            found.append((path, None))
            continue
        # A record decides what gets signalled: anything but positive integer ids is refused.
        ids = (record.pid, record.pgid, record.owner_pid)
        valid = all(type(i) is int and i > 1 for i in ids)
        found.append((path, record if valid else None))
    return found


def process_if_same(identity: Identity) -> psutil.Process | None:
    """The process with this (pid, create time), or None if it is gone or the pid was reused."""
    pid, create_time = identity
    try:
        proc = psutil.Process(pid)
        # Exact comparison is right: both numbers come from psutil reading the same /proc field.
        return proc if proc.create_time() == create_time else None
    except psutil.Error:
        return None


def sweep(directory: Path | None = None, stop_timeout: float = 5.0) -> list[str]:
    """Stop servers whose recording process is gone; return one line per server stopped.

    Records of servers that are gone are deleted; records of live runs are left alone.
    """
    lines: list[str] = []
    # However a record came to name them, this process and its ancestors are never stopped.
    protected = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    for path, record in read_all(directory):
        if record is None:
            # Unreadable and old: not a write in progress. (Another sweep may have removed it.)
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > 3600:
                    path.unlink()
            continue
        if process_if_same((record.owner_pid, record.owner_create_time)) is not None:
            continue  # its run is still going (maybe in another terminal): not ours to judge
        leader = process_if_same((record.pid, record.create_time))
        members = [p for p in map(process_if_same, record.members) if p is not None]
        if {record.pid, record.pgid, *(p.pid for p in members)} & protected:
            continue
        if leader is None and not members:
            path.unlink(missing_ok=True)
            continue
        group = ProcessGroup(leader or members[0], members)
        group.pgid = record.pgid
        notes = group.stop(stop_timeout)
        alive = group.alive()
        state = "stopped" if not alive else "could not stop"
        extra = f" ({'; '.join(notes)})" if notes else ""
        lines.append(f"{state} {record.describe()} left by an earlier run{extra}")
        if not alive:
            path.unlink(missing_ok=True)
    return lines


def identities(procs: Iterable[psutil.Process]) -> list[Identity]:
    out: list[Identity] = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            out.append((proc.pid, proc.create_time()))
    return out

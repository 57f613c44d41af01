"""The per-run record of servers leakguard started, and the sweep of those a dead run left behind.

One JSON file per server: the server's identity (pid, create time, pgid, known members), its
run's id (also set in the server's environment) and its owner's identity (the process that
started it). A later sweep stops a recorded server only if the owner is gone or a zombie, the
server's own identity still matches and, where its environment can be read, it carries the run's
id — never anything found by port or by name.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from leakguard.core.jsonfile import write_json_atomic
from leakguard.servers.procgroup import ProcessGroup
from leakguard.servers.statedir import state_dir

Identity = tuple[int, float]

RUN_MARK = "LEAKGUARD_SERVER_RUN"
"""Set in every server's environment to its run id: the sweep's second proof of identity."""


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
    write_json_atomic(str(path), asdict(record))  # a sweep never reads half a record
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


def owner_alive(identity: Identity) -> bool:
    """Whether the recording process still runs: same (pid, create time) and not a zombie.

    A killed pytest whose parent never reaps it (a container whose pid 1 does not) stays a
    zombie with its pid and create time: dead all the same.
    """
    proc = process_if_same(identity)
    if proc is None:
        return False
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def carries_run(proc: psutil.Process, run_id: str) -> bool:
    """False only if the environment can be read and lacks the run's mark (or has another)."""
    try:
        environ = proc.environ()
    except psutil.Error:
        return True  # another user's process: (pid, create time) must do
    # Empty: a zombie, or a server that exec'd with a cleared environment; nothing to compare.
    return not environ or environ.get(RUN_MARK) == run_id


def sweep(directory: Path | None = None, stop_timeout: float = 5.0) -> list[str]:
    """Stop servers whose recording process is gone; return one line per server stopped.

    Records of servers that are gone, or that are not what the record says, are deleted;
    records of live runs are left alone. Sweeps of parallel processes take turns.
    """
    directory = directory or records_dir()
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return _sweep_locked(directory, stop_timeout)
    finally:
        os.close(fd)  # closing releases the lock


def _sweep_locked(directory: Path, stop_timeout: float) -> list[str]:
    lines: list[str] = []
    protected: set[int] = set()
    for path, record in read_all(directory):
        if record is None:
            # Unreadable and old: not a write in progress. (Another sweep may have removed it.)
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > 3600:
                    path.unlink()
            continue
        if owner_alive((record.owner_pid, record.owner_create_time)):
            continue  # its run is still going (maybe in another terminal): not ours to judge
        leader = process_if_same((record.pid, record.create_time))
        members = [p for p in map(process_if_same, record.members) if p is not None]
        if not protected:  # only now: a sweep with nothing stale costs no walk up the tree
            # However a record came to name them, this process and its ancestors are never stopped.
            protected = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
        if {record.pid, record.pgid, *(p.pid for p in members)} & protected:
            continue
        if leader is not None and not carries_run(leader, record.run_id):
            # Same pid and start, yet not that run's server: the record proves nothing.
            path.unlink(missing_ok=True)
            continue
        members = [p for p in members if carries_run(p, record.run_id)]
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

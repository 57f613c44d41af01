"""The run's environment mark: tagged per spawn with the epoch of the code that spawned it, and
read back from the environment of the processes that carry it."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from leakguard.core import compat
from leakguard.core.lineage import NO_EPOCH
from leakguard.trackers.processes.procfs import LINUX, read_proc


def tagged_env(env: Any, name: str, value: str, epoch: int) -> Any:
    """The environment to hand a child spawned under ``epoch``.

    The run's mark ``NAME=VALUE`` becomes ``NAME=VALUE:EPOCH`` in the child's environment only
    (``os.environ`` is never changed per test): every exec'd descendant that keeps it inherits
    the tag, so one found re-parented to init is still tied to the spawn it came from, and so to
    the test (or fixture) whose code spawned it. An environment without our mark (the test's
    own ``env={...}``, or a test that removed the mark) is handed on as given.
    """
    if epoch == NO_EPOCH:
        return env
    if env is None or env is os.environ:
        if os.environ.get(name) != value:
            return env
        data = compat.environ_bytes()
        if data is not None:
            copy: dict[Any, Any] = dict(data)
            copy[os.fsencode(name)] = os.fsencode(f"{value}:{epoch}")
        else:
            copy = dict(os.environ)
            copy[name] = f"{value}:{epoch}"
        return copy
    if isinstance(env, Mapping):
        for key in (name, os.fsencode(name)):
            found = env.get(key)
            if found == value or found == os.fsencode(value):
                tagged = dict(env)
                tag = f"{value}:{epoch}"
                tagged[key] = os.fsencode(tag) if isinstance(found, bytes) else tag
                return tagged
    return env


def mark_epoch(pid: int, mark: bytes) -> int | None:
    """The spawn tag of the run's ``mark`` (``NAME=VALUE``) in the process's initial environment.

    ``None``: not marked. ``0``: marked, untagged (it inherited the run's plain environment).
    Otherwise the epoch of the spawn it descends from: leakguard tags the mark in the
    environment it hands each ``subprocess``/``posix_spawn`` child (``VALUE:EPOCH``).
    """
    if not LINUX:
        import psutil

        try:
            name = mark.decode().partition("=")[0]
            found = psutil.Process(pid).environ().get(name)
        except (psutil.Error, OSError):
            return None
        return None if found is None else _tag_of(f"{name}={found}".encode() + b"\0", mark)
    data = read_proc(f"/proc/{pid}/environ", 1 << 14, whole=True)
    return _tag_of(data, mark) if data else None


def _tag_of(environ: bytes, mark: bytes) -> int | None:
    if environ.startswith(mark):
        at = len(mark)
    else:
        found = environ.find(b"\0" + mark)
        if found < 0:
            return None
        at = found + 1 + len(mark)
    end = environ.find(b"\0", at)
    value = environ[at:] if end < 0 else environ[at:end]
    if not value:
        return 0
    if value[:1] == b":" and value[1:].isdigit():
        return int(value[1:])
    return None  # another variable whose value merely starts like ours


_RANGE_SCAN_MAX = 512


def last_pid() -> int | None:
    """The pid the kernel handed out last (``/proc/loadavg``, 5th field), or ``None``."""
    if not LINUX:
        return None
    data = read_proc("/proc/loadavg", 256)
    try:
        return int(data.split()[4]) if data else None
    except (IndexError, ValueError):
        return None


def marked_pids(
    mark: bytes,
    after: int | None = None,
    upto: int | None = None,
    *,
    retry: Iterable[int] = (),
    unseen: list[int] | None = None,
) -> list[int]:
    """Processes whose environment holds ``mark``.

    With ``after``/``upto`` (two `last_pid` readings), only pids handed out in between are
    looked at: pids are allocated in increasing order, so a process born since the first
    reading has one of them (a wrap-around falls back to the full scan). That is a few reads
    per spawning test instead of one per process on the machine (≈ 0.2–0.6 ms).
    Other users' processes fail to open at once (EACCES).

    A pid is handed out before its process shows in ``/proc`` (``fork`` allocates it first), and
    a process in the middle of ``fork`` or ``exec`` shows an empty environment: in a range scan,
    those go to ``unseen``, for the caller to ``retry``.
    """
    if not LINUX:
        import psutil

        return [p.pid for p in psutil.process_iter() if mark_epoch(p.pid, mark) is not None]
    me = os.getpid()
    if after is not None and upto is not None and 0 <= upto - after <= _RANGE_SCAN_MAX:
        # Direct reads: /proc/<tid> of a thread opens too, so a match must be a leader.
        candidates = [str(pid) for pid in (*retry, *range(after + 1, upto + 1))]
        check_leader = True
    else:
        candidates = [name for name in os.listdir("/proc") if name.isdigit()]
        check_leader = False
    found: list[int] = []
    for name in candidates:
        pid = int(name)
        if pid == me:
            continue
        data = read_proc(f"/proc/{name}/environ", 1 << 14, whole=True)
        if not data and check_leader and unseen is not None:
            # Not in /proc yet, between the memory maps of a fork or an exec (an empty
            # environ), or gone: the caller looks again shortly.
            unseen.append(pid)
        if data and _tag_of(data, mark) is not None and (not check_leader or _is_leader(pid)):
            found.append(pid)
    return found


def _is_leader(pid: int) -> bool:
    data = read_proc(f"/proc/{pid}/status", 4096) or b""
    for line in data.splitlines():
        if line.startswith(b"Tgid:"):
            return int(line.split()[1]) == pid
    return False

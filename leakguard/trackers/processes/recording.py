"""Where each child process was spawned: thin wrappers around every Python-level way to start
one (``subprocess``, ``os.fork``/``forkpty``/``posix_spawn``/``system``, ``_posixsubprocess``,
``multiprocessing``), recording the caller's line and bumping a counter.

The counter is the processes tracker's cheap check: while it stands still, no Python code can
have started a process, so the tree need not be read again. One `SpawnLog` is shared by every
tracker instance alive at once (a ``leakguard.check`` block inside a checked test, a pytester
run inside a run): it hangs on the installed wrappers, and the last user out removes it.
"""

from __future__ import annotations

import functools
import inspect
import os
import subprocess
import sys
import weakref
from collections.abc import Callable
from typing import Any

from leakguard.core import patching
from leakguard.core.lineage import LINEAGE, NO_EPOCH
from leakguard.core.origin import RawOrigin, capture
from leakguard.trackers.processes import mark as proc_mark
from leakguard.trackers.processes import procfs
from leakguard.trackers.processes.pipe import ReportPipe

_LOG_ATTR = "_leakguard_spawn_log"
_PRUNE_FLOOR = 256


# Plain classes, not dataclasses: defining a dataclass costs 0.25-0.5 ms on Python 3.10-3.12,
# paid at every checked run's start-up.
class SpawnRecord:
    """One process this process started: enough to say where, and who can reap it."""

    __slots__ = ("argv", "born_by", "born_from", "epoch", "how", "origin", "owner", "pid", "seq")

    def __init__(
        self,
        pid: int,
        born_from: float,
        born_by: float,
        seq: int,
        origin: RawOrigin | None,
        how: str,
        argv: Any = None,
        owner: weakref.ReferenceType[Any] | None = None,
        epoch: int = NO_EPOCH,
    ) -> None:
        self.pid = pid
        # The child was born between these two readings of `procfs.now` (around the spawn
        # call): its identity without reading its stat, which right after a spawn costs 10-40 µs.
        self.born_from = born_from
        self.born_by = born_by
        self.seq = seq
        self.origin = origin
        self.how = how
        self.argv = argv
        self.owner = owner
        self.epoch = epoch
        """The epoch of the code that spawned it (`LINEAGE.creator` on the spawning thread)."""

    def owner_object(self) -> Any | None:
        return self.owner() if self.owner is not None else None

    def matches(self, start: float) -> bool:
        """True when a process that started at ``start`` is the one this spawn made."""
        return procfs.born_after(start, self.born_from) and start <= self.born_by


class SpawnLog:
    """The shared record of spawns; ``spawns`` only ever grows."""

    def __init__(self, mark_name: str, mark_value: str) -> None:
        self.mark_name = mark_name
        self.mark_value = mark_value
        self.spawns = 0
        self.users = 0
        self.records: dict[int, SpawnRecord] = {}
        self.previous_mark: str | None = None
        self.prune_at = _PRUNE_FLOOR
        self.owner_pid = os.getpid()
        self.pipe = ReportPipe()
        self.on_spawn: Callable[[], None] | None = None
        """Called in this process after each spawn (it arms the SIGTERM handler of a test)."""

    @property
    def mark(self) -> bytes:
        return f"{self.mark_name}={self.mark_value}".encode()

    def tagged_env(self, env: Any, epoch: int) -> Any:
        """The environment for a child spawned under ``epoch`` (see `proc_mark.tagged_env`)."""
        return proc_mark.tagged_env(env, self.mark_name, self.mark_value, epoch)

    def record(
        self,
        pid: int,
        born_from: float,
        origin: RawOrigin | None,
        how: str,
        argv: Any = None,
        owner: Any = None,
        epoch: int = NO_EPOCH,
    ) -> None:
        self.spawns += 1
        if pid <= 0:
            return
        if os.getpid() != self.owner_pid:
            # We are a forked descendant with a copy of the log: tell the real owner.
            stat = procfs.read_stat(pid)
            if stat is not None:
                self.pipe.send(pid, stat.start, epoch)
            return
        if self.on_spawn is not None:
            self.on_spawn()
        known = self.records.get(pid)
        if known is not None and known.born_from >= born_from:
            # The same process seen by an outer wrapper (Popen around posix_spawn, Process
            # around fork): keep the first origin, add what the outer layer knows.
            known.argv = argv if argv is not None else known.argv
            known.owner = weakref.ref(owner) if owner is not None else known.owner
            known.how = how if owner is not None else known.how
            return
        ref = weakref.ref(owner) if owner is not None else None
        born_by = procfs.now()
        self.records[pid] = SpawnRecord(
            pid, born_from, born_by, self.spawns, origin, how, argv, ref, epoch
        )
        if len(self.records) > self.prune_at:
            self._prune()

    def bump(self) -> None:
        """A spawn whose pid we never see (``os.system``): only the counter moves."""
        self.spawns += 1
        if self.on_spawn is not None and os.getpid() == self.owner_pid:
            self.on_spawn()

    def find(self, pid: int, start: float) -> SpawnRecord | None:
        record = self.records.get(pid)
        return record if record is not None and record.matches(start) else None

    def _prune(self) -> None:
        # Forget processes that no longer exist at all (a zombie still needs its record).
        for pid, record in list(self.records.items()):
            stat = procfs.read_stat(pid)
            if stat is None or not record.matches(stat.start):
                self.records.pop(pid, None)
        self.prune_at = max(_PRUNE_FLOOR, 2 * len(self.records))


# --- the wrappers --------------------------------------------------------------------------
def _env_slot(original: Any) -> int | None:
    """Where ``env`` sits among ``_execute_child``'s arguments after ``args`` (6 on CPython
    3.10-3.13, where ``Popen.__init__`` passes them all by position)."""
    try:
        names = list(inspect.signature(original).parameters)
    except (TypeError, ValueError):
        return None
    return names.index("env") - 2 if "env" in names[2:] else None


def _wrap_execute_child(log: SpawnLog) -> Callable[[Any], Any]:
    def make(original: Any) -> Any:
        slot = _env_slot(original)

        @functools.wraps(original)
        def _execute_child(self: subprocess.Popen[Any], args: Any, *rest: Any, **kw: Any) -> None:
            # Runs on the caller's thread: its epoch is the spawn's lineage.
            origin, born_from, epoch = capture(), procfs.now(), LINEAGE.creator()
            if slot is not None and len(rest) > slot:
                rest = (*rest[:slot], log.tagged_env(rest[slot], epoch), *rest[slot + 1 :])
            elif "env" in kw:
                kw["env"] = log.tagged_env(kw["env"], epoch)
            original(self, args, *rest, **kw)
            log.record(self.pid, born_from, origin, "subprocess.Popen", args, self, epoch)

        return _execute_child

    return make


def _wrap_pid_returning(log: SpawnLog, how: str) -> Callable[[Any], Any]:
    """``os.fork``, ``os.posix_spawn[p]``, ``_posixsubprocess.fork_exec``: return a pid."""
    spawn_env = how.startswith("os.posix_spawn")

    def make(original: Any) -> Any:
        @functools.wraps(original)
        def spawn(*args: Any, **kwargs: Any) -> Any:
            origin, born_from, epoch = capture(), procfs.now(), LINEAGE.creator()
            if spawn_env and len(args) > 2 and args[2] is not None:
                args = (*args[:2], log.tagged_env(args[2], epoch), *args[3:])
            pid = original(*args, **kwargs)
            if pid:  # 0 in a forked child: record nothing there
                argv = args[1] if spawn_env and len(args) > 1 else None
                log.record(pid, born_from, origin, how, argv, None, epoch)
            return pid

        return spawn

    return make


def _wrap_forkpty(log: SpawnLog) -> Callable[[Any], Any]:
    def make(original: Any) -> Any:
        @functools.wraps(original)
        def forkpty() -> tuple[int, int]:
            origin, born_from, epoch = capture(), procfs.now(), LINEAGE.creator()
            pid, fd = original()
            if pid:
                log.record(pid, born_from, origin, "os.forkpty", None, None, epoch)
            return pid, fd

        return forkpty

    return make


def _wrap_system(log: SpawnLog) -> Callable[[Any], Any]:
    def make(original: Any) -> Any:
        @functools.wraps(original)
        def system(command: Any) -> int:
            # system() waits for its shell; only what the shell left behind can leak.
            log.bump()
            result: int = original(command)
            log.bump()
            return result

        return system

    return make


def _wrap_process_start(log: SpawnLog) -> Callable[[Any], Any]:
    def make(original: Any) -> Any:
        @functools.wraps(original)
        def start(self: Any) -> None:
            origin, born_from, epoch = capture(), procfs.now(), LINEAGE.creator()
            original(self)
            # Under forkserver the pid comes back over a socket: this is the only place we see it.
            log.record(self.pid, born_from, origin, "multiprocessing.Process", None, self, epoch)

        return start

    return make


def _targets(log: SpawnLog) -> list[tuple[Any, str, Callable[[Any], Any]]]:
    targets: list[tuple[Any, str, Callable[[Any], Any]]] = [
        (subprocess.Popen, "_execute_child", _wrap_execute_child(log)),
    ]
    if hasattr(os, "fork"):
        targets.append((os, "fork", _wrap_pid_returning(log, "os.fork")))
    if hasattr(os, "forkpty"):
        targets.append((os, "forkpty", _wrap_forkpty(log)))
    for name in ("posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            targets.append((os, name, _wrap_pid_returning(log, f"os.{name}")))
    targets.append((os, "system", _wrap_system(log)))
    posixsubprocess = sys.modules.get("_posixsubprocess")
    if posixsubprocess is not None:
        targets.append((posixsubprocess, "fork_exec", _wrap_pid_returning(log, "fork_exec")))
    return targets


def acquire() -> SpawnLog:
    """Join the shared log (creating it, its wrappers and the run's environment mark)."""
    log: SpawnLog | None = getattr(subprocess.Popen._execute_child, _LOG_ATTR, None)  # type: ignore[attr-defined]  # our wrapper's attribute
    if log is None:
        # The mark: inherited by every descendant that keeps our environment, so one found
        # re-parented to init is still provably ours. Set once per run, never per test.
        # os.urandom is what secrets.token_hex reads; importing secrets (and hmac) costs ≈ 0.4 ms.
        log = SpawnLog(mark_name=f"LEAKGUARD_RUN_{os.getpid()}", mark_value=os.urandom(8).hex())
        log.previous_mark = os.environ.get(log.mark_name)
        os.environ[log.mark_name] = log.mark_value
        if procfs.LINUX:
            log.pipe.open()
    for owner, attr, make in _targets(log):
        patching.install(owner, attr, make)
        setattr(getattr(owner, attr), _LOG_ATTR, log)
    log.users += 1
    return log


def release(log: SpawnLog) -> None:
    for owner, attr, _make in _targets(log):
        patching.uninstall(owner, attr)
    log.users -= 1
    if log.users <= 0:
        log.pipe.close()
        if log.previous_mark is None:
            os.environ.pop(log.mark_name, None)
        else:
            os.environ[log.mark_name] = log.previous_mark


def watch_multiprocessing(log: SpawnLog) -> bool:
    """Wrap ``multiprocessing.Process.start`` once that module is loaded (never import it:
    it costs ≈ 4 ms, and a run that never uses it should not pay)."""
    module = sys.modules.get("multiprocessing.process")
    if module is None:
        return False
    patching.install(module.BaseProcess, "start", _wrap_process_start(log))
    return True


def unwatch_multiprocessing() -> None:
    module = sys.modules.get("multiprocessing.process")
    if module is not None:
        patching.uninstall(module.BaseProcess, "start")

"""Stopping the process group of a server, signalling only processes proven to be ours.

A process is ``psutil.Process`` — pid *and* create time — and psutil re-checks that identity in
every ``send_signal``. A group is signalled with ``killpg`` only while a member we know by
identity is still in it: a pid cannot be reused as a new group id while any process of the old
group lives, so that member proves the group is still the one we started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterable

import psutil

from leakguard.core.grace import settle


class ProcessGroup:
    """The leader we started (own session, so pgid == sid == pid) and the members seen since."""

    def __init__(
        self,
        leader: psutil.Process,
        members: Iterable[psutil.Process] = (),
        popen: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.leader = leader
        self.pgid = leader.pid
        self.popen = popen  # set when the leader is our child: we reap it, and only at the end
        self.members: dict[int, psutil.Process] = {p.pid: p for p in members}

    def refresh(self) -> None:
        """Remember every process now in our session or group, and the leader's descendants."""
        # While a process we know is in our session, the session is ours (its id cannot be
        # reused): the scan below cannot pick up strangers. Without one it would prove nothing.
        if not _running(self.leader) or self.pgid not in (_pgid(self.leader), _sid(self.leader)):
            return
        try:
            pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
        except OSError:  # not Linux: descendants are the best we can know
            pids = [p.pid for p in _children(self.leader)]
        for pid in pids:
            if pid == self.pgid or pid in self.members:
                continue
            try:
                ours = os.getsid(pid) == self.pgid or os.getpgid(pid) == self.pgid
                if ours:
                    self.members[pid] = psutil.Process(pid)
            except (OSError, psutil.Error):
                continue
        # A descendant that moved to a session of its own is still one we started.
        for child in _children(self.leader):
            self.members.setdefault(child.pid, child)

    def alive(self) -> list[psutil.Process]:
        procs = [self.leader, *self.members.values()]
        return [p for p in procs if _running(p) and not _zombie(p)]

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the group if still provably ours, and to each known member directly."""
        procs = [self.leader, *self.members.values()]
        # Never our own group: killpg(0) or our own pgid would hit pytest itself.
        foreign = self.pgid > 1 and self.pgid != os.getpgrp()
        if foreign and any(_running(p) and _pgid(p) == self.pgid for p in procs):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, sig)
        # Members that left the group (setpgid, setsid) are reached one by one.
        for proc in procs:
            if proc.pid == os.getpid():
                continue
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)  # psutil raises NoSuchProcess if the pid was reused

    def stop(self, timeout: float) -> list[str]:
        """TERM the group, wait, KILL survivors, reap the leader; return notes for the report."""
        notes: list[str] = []
        self.refresh()
        if not self.alive():
            self._reap()
            return notes
        self.signal(signal.SIGTERM)
        self.signal(signal.SIGCONT)  # a stopped process only acts on TERM once continued
        survivors = settle(self.alive, _empty, timeout)
        if survivors:
            self.refresh()
            survivors = self.alive()
            described = ", ".join(_describe(p) for p in survivors)
            notes.append(f"did not stop on SIGTERM within {timeout:g} s, killed: {described}")
            self.signal(signal.SIGKILL)
            survivors = settle(self.alive, _empty, max(timeout, 2.0))
            if survivors:
                left = ", ".join(_describe(p) for p in survivors)
                notes.append(f"still running after SIGKILL: {left}")
        self._reap()
        return notes

    def leader_exited(self) -> bool:
        """Whether the leader has exited, without reaping it (its pid keeps our group id safe)."""
        if self.popen is None:
            return not _running(self.leader) or _zombie(self.leader)
        if self.popen.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def leader_exiting(self) -> bool:
        """Exited, or begun to exit: its sockets may be closed before it is a zombie."""
        return self.leader_exited() or _exiting(self.pgid)

    def exit_code(self) -> int | None:
        """The leader's exit code (negative: killed by that signal), read without reaping it."""
        if self.popen is None:
            return None
        if self.popen.returncode is not None:
            return self.popen.returncode
        try:
            info = os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return self.popen.poll()
        if info is None:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def _reap(self) -> None:
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=1.0)


def _empty(procs: list[psutil.Process]) -> bool:
    return not procs


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running()  # compares create time: False once the pid is reused
    except psutil.Error:
        return False


def _zombie(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


_PF_EXITING = 0x4  # include/linux/sched.h: set as the process starts to exit


def _exiting(pid: int) -> bool:
    """Linux: the kernel has begun to take the process down (a crash, ``os._exit``)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        # Past the command name (which may hold spaces): state is field 3, flags field 9.
        fields = stat[stat.rindex(b")") + 2 :].split()
        return fields[0] in (b"Z", b"X") or bool(int(fields[6]) & _PF_EXITING)
    except (OSError, ValueError, IndexError):
        return False  # not Linux, or gone: `leader_exited` already tells


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None


def _sid(proc: psutil.Process) -> int | None:
    try:
        return os.getsid(proc.pid)
    except OSError:
        return None


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def _describe(proc: psutil.Process) -> str:
    try:
        name = " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        name = "?"
    return f"pid {proc.pid} {name[:60]!r}"

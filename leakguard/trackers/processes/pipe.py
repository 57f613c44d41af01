"""The report pipe: forked descendants name the processes they spawn; trusted only while both
ends are provably the pipe leakguard made (its ``st_dev``/``st_ino``, recorded when made)."""

from __future__ import annotations

import contextlib
import os

from leakguard.trackers.processes import procfs


class ReportPipe:
    """A fork that never execs has no environment mark in /proc (that is written at exec
    only), so a forked descendant reports each process it spawns here instead, with the epoch
    of the code that spawned it. Both ends are non-blocking and close-on-exec: a full pipe
    drops a report, never blocks.

    A test may close either number (``os.closerange``) and something else may land on it:
    every use checks the descriptor's identity first, so a file that took the number is never
    read as reports, written into, or closed.
    """

    def __init__(self) -> None:
        self.read_fd = -1
        self.write_fd = -1
        self.identity: tuple[int, int] | None = None
        # pid -> (start, epoch of the spawning code) of live processes reported so far.
        self.reported: dict[int, tuple[float, int]] = {}
        self.replaced = 0

    def open(self) -> None:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        info = os.fstat(read_fd)
        self.read_fd, self.write_fd = read_fd, write_fd
        self.identity = (info.st_dev, info.st_ino)

    def is_ours(self, fd: int) -> bool:
        if fd < 0 or self.identity is None:
            return False
        try:
            info = os.fstat(fd)
        except OSError:
            return False
        return (info.st_dev, info.st_ino) == self.identity

    def close(self) -> None:
        """Close whichever end is still ours; a number that is no longer ours stays as it is."""
        for fd in (self.read_fd, self.write_fd):
            if self.is_ours(fd):
                os.close(fd)
        self.read_fd = self.write_fd = -1
        self.identity = None

    def send(self, pid: int, start: float, epoch: int) -> None:
        """In a forked descendant: report a process it spawned."""
        if self.is_ours(self.write_fd):
            with contextlib.suppress(OSError):
                os.write(self.write_fd, f"{pid} {start} {epoch}\n".encode())

    def drain(self) -> dict[int, tuple[float, int]]:
        """Live processes reported so far: ``{pid: (start, epoch)}``."""
        if self.identity is not None and not (
            self.is_ours(self.read_fd) and self.is_ours(self.write_fd)
        ):
            # An end was closed under us: what reports it still held are lost, and whatever
            # now has its number is not ours to read. Forks from now on get a fresh pipe.
            self.close()
            self.open()
            self.replaced += 1
        while self.read_fd >= 0:
            try:
                data = os.read(self.read_fd, 65536)
            except OSError:
                break
            if not data:
                break
            for line in data.split(b"\n"):
                fields = line.split()
                if len(fields) == 3 and fields[0].isdigit() and fields[2].isdigit():
                    with contextlib.suppress(ValueError):
                        self.reported[int(fields[0])] = (float(fields[1]), int(fields[2]))
        for pid, (start, _epoch) in list(self.reported.items()):
            stat = procfs.read_stat(pid)
            if stat is None or stat.start != start or stat.state in "ZX":
                del self.reported[pid]  # gone, or dead and waiting for its own parent
        return self.reported

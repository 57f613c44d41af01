"""A server's log file: where its stdout and stderr go, read back for error messages."""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Sequence
from pathlib import Path

from leakguard.servers import statedir

TAIL_BYTES = 8192  # enough for the last 20 lines of almost any log, cheap on a 1 GB one
LOG_DAYS = 7  # logs of servers started outside the fixtures (no tmp_path) are kept this long


def new_log_path(name: str) -> Path:
    """A fresh log in the state directory's ``logs/``, pruning those older than ``LOG_DAYS``."""
    statedir.prune("logs", older_than=LOG_DAYS * 86400)
    fd, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".log", dir=statedir.state_dir("logs"))
    os.close(fd)  # our own fresh descriptor: only the name is wanted
    return Path(path)


def read_tail(path: Path | None, lines: int = 20) -> str:
    if path is None:
        return ""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - TAIL_BYTES))
            data = f.read()
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def append_note(path: Path | None, message: str) -> None:
    """Mark an event (a death, a restart) in the log, between the server's own lines."""
    if path is not None:
        with open(path, "a") as log:
            log.write(f"\n--- leakguard: {message} ---\n")


def default_name(cmd: Sequence[str] | str) -> str:
    """``http.server`` for ``python -m http.server``, ``app.py`` for ``python app.py``, …"""
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    if not argv:
        return "server"
    first = os.path.basename(argv[0])
    if first.startswith("python") and len(argv) > 1:
        if argv[1] == "-m" and len(argv) > 2:
            return argv[2]
        return os.path.basename(argv[1])
    return first

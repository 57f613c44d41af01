"""Where leakguard keeps state shared by processes and runs: port reservations, server records."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from pathlib import Path

ENV_VAR = "LEAKGUARD_STATE_DIR"


def state_dir(sub: str) -> Path:
    """``sub`` in ``$LEAKGUARD_STATE_DIR``, else ``$XDG_STATE_HOME/leakguard``, else
    ``<tmp>/leakguard-<uid>``.

    Per user and private (mode 0700): the records in it decide which processes may be signalled,
    so a directory another user could write to is refused rather than trusted.
    """
    configured = os.environ.get(ENV_VAR)
    if configured:
        base = Path(configured)
    elif os.environ.get("XDG_STATE_HOME"):
        base = Path(os.environ["XDG_STATE_HOME"]) / "leakguard"
    else:
        base = Path(tempfile.gettempdir()) / f"leakguard-{os.getuid()}"
    path = base / sub
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for checked in (base, path):
        info = os.lstat(checked)
        writable_by_others = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or writable_by_others:
            raise PermissionError(
                f"leakguard state directory {checked} is not a directory owned by uid "
                f"{os.getuid()} and writable only by it; set {ENV_VAR} to a private directory"
            )
    return path


def prune(sub: str, older_than: float) -> None:
    """Delete files in ``sub`` not modified for ``older_than`` seconds (old server logs)."""
    cutoff = time.time() - older_than
    with os.scandir(state_dir(sub)) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)

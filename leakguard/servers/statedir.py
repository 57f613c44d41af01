"""Where leakguard keeps state shared across processes and runs: port reservations, server records."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

ENV_VAR = "LEAKGUARD_STATE_DIR"


def state_dir(sub: str) -> Path:
    """``$LEAKGUARD_STATE_DIR`` or ``$XDG_STATE_HOME/leakguard`` or ``<tmp>/leakguard-<uid>``, + sub.

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
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise PermissionError(
                f"leakguard state directory {checked} is not a directory owned by uid "
                f"{os.getuid()}; set {ENV_VAR} to a private directory"
            )
    return path

"""Safety net shared by the server tests (the ``state_dir`` fixture in conftest uses it)."""

from __future__ import annotations

import contextlib
import os

import psutil


def kill_if_same(pid: int, create_time: float | None = None) -> None:
    """SIGKILL ``pid`` only if it is still the process with ``create_time`` (when given)."""
    if pid == os.getpid():
        return  # a forged record may name this very process
    with contextlib.suppress(psutil.Error):
        proc = psutil.Process(pid)
        if create_time is None or proc.create_time() == create_time:
            proc.kill()

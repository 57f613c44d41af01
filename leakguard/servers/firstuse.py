"""What starting a server sets in motion: the sweep of servers dead runs left behind, and joining
the pytest run and fixture that started it. Nothing of the server helpers runs before this."""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING

import pytest

from leakguard.servers import records
from leakguard.servers.errors import StaleServerWarning
from leakguard.servers.watcher import watch

if TYPE_CHECKING:
    from leakguard.servers.process import ServerProcess

logger = logging.getLogger("leakguard.servers")

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_MAX_FRAMES = 300  # pytest's own stack under a fixture is ~60 frames deep; xdist adds ~20


@dataclass(frozen=True)
class Caller:
    """The pytest run, and the fixture if any, whose code is starting a server."""

    config: pytest.Config
    fixture: str | None  # None: a test's body, or a hook
    scope: str


def sweep_stale() -> None:
    """Stop what dead runs left; each stop is logged and warned (never raised: see `_warn`)."""
    for line in records.sweep():
        logger.warning("%s", line)
        _warn(line)


def join_run(server: ServerProcess, frame: FrameType | None) -> None:
    """Watch ``server`` when a module-, class-, package- or session-scoped fixture started it."""
    caller = find_caller(frame)
    if caller is not None and caller.fixture is not None and caller.scope != "function":
        watch(caller.config, caller.fixture, server)


def find_caller(frame: FrameType | None) -> Caller | None:
    """Read the run and fixture off the stack, starting at ``frame`` and going outwards.

    pytest hands a plain function no context, and a hook per fixture to find it would cost every
    run that never starts a server. But while a fixture runs, its ``pytest.FixtureRequest`` is a
    local of pytest's frame that called it; while a test runs, its ``pytest.Item`` is. The
    nearest wins: it belongs to the innermost run (pytester runs nest). A server started on
    another thread finds neither: ``watch_server(request, server)`` says it explicitly.
    """
    for _ in range(_MAX_FRAMES):
        if frame is None:
            return None
        for value in list(frame.f_locals.values()):
            kind = type(value)  # not isinstance: a dead weakref.proxy raises, a mock may lie
            if issubclass(kind, pytest.FixtureRequest):
                return Caller(value.config, value.fixturename, value.scope)
            if issubclass(kind, pytest.Item):
                return Caller(value.config, None, "function")
        frame = frame.f_back
    return None


def _warn(message: str) -> None:
    # Point at the user's line that started the server, not at leakguard's own frames.
    stacklevel, frame = 1, inspect.currentframe()
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        stacklevel, frame = stacklevel + 1, frame.f_back
    del frame
    try:
        warnings.warn(StaleServerWarning(message), stacklevel=stacklevel)
    except StaleServerWarning:
        # -W error must not fail a test because a server that is gone now was left by another
        # run; shown all the same (pytest records it in the warnings summary).
        with warnings.catch_warnings():
            warnings.simplefilter("always", StaleServerWarning)
            warnings.warn(StaleServerWarning(message), stacklevel=stacklevel)

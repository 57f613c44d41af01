"""Where descriptors were opened: Python's ``open`` and ``socket.__new__`` audit events, plus
light wrappers around the ``os`` calls that make descriptors without an audit event.

Recording is cheap (a frame walk, ≈ 1–2 µs, on calls that open something); matching a record
to a leaked descriptor happens only when one is reported.
"""

from __future__ import annotations

import contextlib
import os
import sys
import weakref
from collections.abc import Callable
from typing import Any

from leakguard import patching
from leakguard.origin import RawOrigin, capture
from leakguard.trackers.fdscan import FdKey

_MAX_PATHS = 2048
"""Opened paths remembered (imports open files too); the oldest are forgotten first."""
_MAX_CREATED = 4096
# ``os`` functions that return fresh descriptors without raising an audit event.
_WRAPPED = ("pipe", "pipe2", "eventfd", "memfd_create", "dup", "dup2", "openpty")
# Audit events that make a descriptor: each bumps ``opens`` (see ``fdscan.ScanGroup``).
_OPENING_EVENTS = frozenset({"open", "socket.__new__", "sqlite3.connect"})


class OriginRecorder:
    """Remembers where files, sockets and pipes were opened while at least one tracker is on."""

    def __init__(self) -> None:
        self.users = 0
        self._hooked = False
        self.paths: dict[str, tuple[RawOrigin | None, str | None]] = {}
        self.sockets: weakref.WeakKeyDictionary[Any, RawOrigin | None] = weakref.WeakKeyDictionary()
        self.created: dict[FdKey, RawOrigin | None] = {}
        # Counts every descriptor-making call seen. While it and the list of open numbers are
        # unchanged, no number can have been closed and reopened by Python code, so the scan
        # may keep its identities instead of fstat-ing every descriptor again.
        self.opens = 0

    # --- on / off ----------------------------------------------------------------------------
    def start(self) -> None:
        if not self._hooked:
            # An audit hook cannot be removed: it is added once and idles while ``users`` is 0.
            sys.addaudithook(self._hook)
            self._hooked = True
        self.users += 1
        self.opens += 1  # calls made while nobody counted: earlier identities are not proven
        for name in _WRAPPED:
            if hasattr(os, name):
                patching.install(os, name, self._recording)

    def stop(self) -> None:
        self.users = max(0, self.users - 1)
        for name in _WRAPPED:
            if hasattr(os, name):
                patching.uninstall(os, name)
        if self.users == 0:
            self.paths.clear()
            self.created.clear()

    # --- recording ---------------------------------------------------------------------------
    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if self.users <= 0 or event not in _OPENING_EVENTS:
            return
        self.opens += 1
        # An exception in an audit hook aborts the audited call (the user's open()): recording
        # is best effort and must never raise, whatever another thread does meanwhile.
        with contextlib.suppress(Exception):
            if event == "open":
                self._opened(args)
            elif event == "socket.__new__":
                self.sockets[args[0]] = capture()

    def _opened(self, args: tuple[Any, ...]) -> None:
        path = args[0] if args else None
        if path is None or isinstance(path, int):
            return  # open(fd): the descriptor was made elsewhere
        name = os.fsdecode(path)
        if not os.path.isabs(name):
            name = os.path.join(os.getcwd(), name)
        mode = args[1] if len(args) > 1 and isinstance(args[1], str) else None
        paths = self.paths
        paths.pop(name, None)  # the newest opening of a path wins
        paths[name] = (capture(), mode)
        if len(paths) > _MAX_PATHS:
            del paths[next(iter(paths))]

    def _recording(self, original: Callable[..., Any]) -> Callable[..., Any]:
        recorder = self

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            if isinstance(result, int) and 0 <= result <= 2:
                # pytest's capture dup2()s onto 1 and 2 at every phase switch (12 times a
                # test); 0-2 are never tracked, so there is nothing to count or remember.
                return result
            recorder.opens += 1
            if recorder.users > 0:
                with contextlib.suppress(Exception):  # never break the caller's os.pipe()
                    recorder._remember(result if isinstance(result, tuple) else (result,))
            return result

        wrapper.__wrapped__ = original  # type: ignore[attr-defined]  # for introspection tools
        wrapper.__name__ = getattr(original, "__name__", "wrapper")
        wrapper.__doc__ = getattr(original, "__doc__", None)
        return wrapper

    def _remember(self, fds: tuple[Any, ...]) -> None:
        origin = capture(sys._getframe(2))
        created = self.created
        for fd in fds:
            if not isinstance(fd, int):
                continue
            st = os.fstat(fd)
            created[(fd, st.st_dev, st.st_ino)] = origin
        while len(created) > _MAX_CREATED:
            del created[next(iter(created))]

    # --- lookups (only for what leaked) ------------------------------------------------------
    def for_key(self, key: FdKey) -> RawOrigin | None:
        return self.created.get(key)

    def for_path(self, path: str) -> tuple[RawOrigin | None, str | None] | None:
        """Where ``path`` (as ``/proc/self/fd`` shows it: resolved) was last opened."""
        found = self.paths.get(path)
        if found is not None:
            return found
        # Opened through a symlink or with ``..``: resolve the recorded names, newest first.
        for name in reversed(list(self.paths)):
            try:
                if os.path.realpath(name) == path:
                    return self.paths[name]
            except (OSError, ValueError):
                continue
        return None

    def socket_for(self, fd: int) -> tuple[Any, RawOrigin | None] | None:
        """The live Python socket object that owns ``fd`` now, with where it was made."""
        found: tuple[Any, RawOrigin | None] | None = None
        for sock, origin in list(self.sockets.items()):
            try:
                if sock.fileno() == fd:
                    found = (sock, origin)  # the newest match wins: older ones were closed
            except OSError:
                continue
        return found


RECORDER = OriginRecorder()
# The process's one recorder: audit hooks are process-wide and permanent, so there is only one.

"""Who made each descriptor, where, and on which thread: light wrappers around the Python calls
that make one (``open``, ``os.open``, ``socket.socket``, ``os.pipe`` and friends,
``socket.socketpair``, epoll selectors).

Recording is cheap (a frame walk, ≈ 1–2 µs, and one lineage lookup, on calls that open
something); matching a record to a leaked descriptor happens only when one is reported. Each
record keeps the creating code's lineage epoch (`LINEAGE.creator`): a descriptor made by a
class-scoped server's thread or a session fixture's thread is that older owner's, not the test's.

Wrappers, not an audit hook: once any audit hook exists, CPython builds an argument tuple and
calls the hooks for *every* audit event of the process, for the rest of its life — each read of
a frame's ``f_code`` or a traceback's ``tb_frame`` among them. A suite whose tooling walks
stacks (blockbuster, in anyio's) raises ~900 such events a test, and an audit hook, even one
written in C, made anyio's ``test_fileio.py`` run 7 % more instructions. A wrapper costs only
the calls it wraps, and it is removed when recording stops.
"""

from __future__ import annotations

import contextlib
import functools
import os
import selectors
import socket
import stat
import sys
import threading
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any, NamedTuple, TypeVar

from leakguard.core import compat, patching
from leakguard.core.lineage import LINEAGE, NO_EPOCH
from leakguard.core.origin import LEAKGUARD_DIR, RawOrigin, capture
from leakguard.trackers.descriptors.scan import FdKey

_MAX_PATHS = 2048
"""Opened paths remembered (imports open files too); the oldest are forgotten first."""
_MAX_CREATED = 4096
_MAX_VIEWS = 4096
"""File objects made over a bare number (``open(fd)``) remembered; past it, no proof of "no
owner" is drawn from the records (see `OriginRecorder.unowned`)."""
# ``os`` functions that return fresh descriptors (recorded by identity, after the call).
_WRAPPED = ("pipe", "pipe2", "eventfd", "memfd_create", "dup", "dup2", "openpty", "pidfd_open")
# Selector classes whose own descriptor is an epoll, devpoll or kqueue.
_SELECTORS = ("EpollSelector", "DevpollSelector", "KqueueSelector")

T = TypeVar("T")


class Made(NamedTuple):
    """How one descriptor (or socket object, or path) was made."""

    origin: RawOrigin | None
    epoch: int
    """`LINEAGE.creator()` of the code that made it (`NO_EPOCH`: no test's code)."""
    thread: int
    """``threading.get_ident()`` of the thread that made it."""
    how: str
    """``open``, ``socket``, ``pipe``, ``dup2``, ``socketpair``, ``selector``, ``mmap`` …"""
    mode: str | None = None
    """For ``open``: the mode given."""
    replaced: int | None = None
    """For a ``dup2`` onto an open number: the epoch that made the identity it replaced (an
    object holding that number belongs to whoever made it)."""


def _made(
    how: str, origin: RawOrigin | None, mode: str | None = None, replaced: int | None = None
) -> Made:
    return Made(origin, LINEAGE.creator(), threading.get_ident(), how, mode, replaced)


class OriginRecorder:
    """Remembers who made files, sockets and pipes while at least one tracker is on."""

    def __init__(self) -> None:
        self.users = 0
        self._opens: list[tuple[Any, str]] = []
        """Where ``open`` was wrapped (`compat.open_lookups`)."""
        self.paths: dict[str, Made] = {}
        self.sockets: weakref.WeakKeyDictionary[Any, Made] = weakref.WeakKeyDictionary()
        # Selectors made while recording: their ``epoll``/``devpoll``/``kqueue`` (which the
        # collector does not list, and takes no weak reference) is found through them.
        self.selectors: weakref.WeakSet[Any] = weakref.WeakSet()
        self.created: dict[FdKey, Made] = {}
        # Identities a file object was made over by number (``open(fd)``, ``os.fdopen``): such
        # an object holds the number without a record of its own.
        self.views: set[FdKey] = set()
        self.views_overflowed = False
        # Counts every descriptor-making call seen. While it and the list of open numbers are
        # unchanged, no number can have been closed and reopened by Python code, so the scan
        # may keep its identities instead of fstat-ing every descriptor again.
        self.opens = 0
        self.placed = 0
        """Counts the descriptors put on a number of the caller's choosing (``dup2``): every
        other opening takes the lowest free number, which the scan's probe watches."""

    # --- on / off ----------------------------------------------------------------------------
    def start(self) -> None:
        self.users += 1
        # Calls made while nobody counted, any number of them: neither earlier identities nor
        # earlier numbers are proven (`scan.scan_fds`).
        self.opens += 1
        self.placed += 1
        if not self._opens:  # the first user: later ones wrap (and unwrap) the same places
            self._opens = compat.open_lookups()
        for owner, name in self._opens:
            patching.install(owner, name, functools.partial(self._recording_open, owner=owner))
        patching.install(os, "open", self._recording_os_open)
        patching.install(socket.socket, "__init__", self._recording_socket)
        for name in _WRAPPED:
            if hasattr(os, name):
                wrap = self._recording_dup2 if name == "dup2" else self._recording(name)
                patching.install(os, name, wrap)
        patching.install(socket, "socketpair", self._recording("socketpair"))
        patching.install(socket.socket, "detach", self._recording_detach)
        for name in _SELECTORS:
            cls = getattr(selectors, name, None)
            if cls is not None:
                patching.install(cls, "__init__", self._recording_selector)

    def stop(self) -> None:
        self.users = max(0, self.users - 1)
        for owner, name in self._opens:
            patching.uninstall(owner, name)
        patching.uninstall(os, "open")
        patching.uninstall(socket.socket, "__init__")
        for name in _WRAPPED:
            if hasattr(os, name):
                patching.uninstall(os, name)
        patching.uninstall(socket, "socketpair")
        patching.uninstall(socket.socket, "detach")
        for name in _SELECTORS:
            cls = getattr(selectors, name, None)
            if cls is not None:
                patching.uninstall(cls, "__init__")
        if self.users == 0:
            self._opens = []
            self.paths.clear()
            self.selectors.clear()
            self.created.clear()
            self.views.clear()
            self.views_overflowed = False

    # --- recording ---------------------------------------------------------------------------
    def _recording_open(self, original: Callable[..., Any], owner: Any) -> Callable[..., Any]:
        """``open`` (the builtin and ``io.open``): the path and mode, after the call. Each
        gets its own wrapper, named after the module it sits in (pickled by reference, each is
        then found where it was taken from)."""
        recorder = self

        def open(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            recorder.opens += 1
            if recorder.users > 0:
                with contextlib.suppress(Exception):  # never break the caller's open()
                    file = args[0] if args else kwargs.get("file")
                    mode = args[1] if len(args) > 1 else kwargs.get("mode", "r")
                    recorder._opened(file, mode, sys._getframe(1))
            return result

        _like(open, original)
        open.__module__ = getattr(owner, "__name__", open.__module__)
        return open

    def _recording_os_open(self, original: Callable[..., int]) -> Callable[..., int]:
        """``os.open``: the path, after the call (a bare number, no mode)."""
        recorder = self

        def open(*args: Any, **kwargs: Any) -> int:
            fd: int = original(*args, **kwargs)
            recorder.opens += 1
            if recorder.users > 0:
                with contextlib.suppress(Exception):  # never break the caller's os.open()
                    path = args[0] if args else kwargs.get("path")
                    recorder._opened(path, None, sys._getframe(1))
            return fd

        _like(open, original)
        open.__module__ = "os"  # where it sits (the original says ``posix``, which keeps its own)
        return open

    def _recording_socket(self, original: Callable[..., None]) -> Callable[..., None]:
        """``socket.socket.__init__``: every socket object, ``accept()``'s, ``fromfd()``'s and
        ``dup()``'s included, and those of subclasses (``ssl.SSLSocket``)."""
        recorder = self

        def __init__(sock: Any, *args: Any, **kwargs: Any) -> None:
            original(sock, *args, **kwargs)
            recorder.opens += 1
            if recorder.users > 0:
                with contextlib.suppress(Exception):  # never break the caller's socket()
                    recorder.sockets[sock] = _made("socket", capture(sys._getframe(1)))

        functools.update_wrapper(__init__, original, assigned=(), updated=())
        return __init__

    def _opened(self, path: Any, mode: Any, caller: FrameType) -> None:
        if isinstance(path, int):
            self._viewed(path)  # open(fd): made elsewhere, now held by a file object too
            return
        if path is None:
            return
        name = os.fsdecode(path)
        if not os.path.isabs(name):
            name = os.path.join(os.getcwd(), name)
        paths = self.paths
        paths.pop(name, None)  # the newest opening of a path wins
        paths[name] = _made("open", capture(caller), mode if isinstance(mode, str) else None)
        if len(paths) > _MAX_PATHS:
            del paths[next(iter(paths))]

    def _recording(self, how: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        recorder = self
        dup2 = how == "dup2"

        def make(original: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                if dup2 and len(args) > 1 and args[1].__class__ is int and 0 <= args[1] <= 2:
                    # pytest's capture dup2()s onto 1 and 2 at every phase switch (12 times a
                    # test); 0-2 are never tracked: nothing to look up, count or remember.
                    return original(*args, **kwargs)
                replaced = None
                if dup2 and recorder.users > 0:
                    replaced = recorder._replaced_epoch(args, kwargs)
                result = original(*args, **kwargs)
                if isinstance(result, int) and 0 <= result <= 2:
                    return result  # 0-2 (a dup2 given fd2= by keyword): never tracked
                recorder.opens += 1
                if dup2:
                    recorder.placed += 1
                if recorder.users > 0:
                    with contextlib.suppress(Exception):  # never break the caller's os.pipe()
                        made = _made(how, capture(sys._getframe(1)), replaced=replaced)
                        recorder._remember(result if isinstance(result, tuple) else (result,), made)
                return result

            functools.update_wrapper(wrapper, original, assigned=(), updated=())
            wrapper.__name__ = getattr(original, "__name__", "wrapper")
            wrapper.__doc__ = getattr(original, "__doc__", None)
            return wrapper

        return make

    def _recording_dup2(self, original: Callable[..., int]) -> Callable[..., int]:
        """``os.dup2``, which pytest's capture calls onto 1 and 2 twelve times a test: those
        numbers are never tracked, and a wrapper with dup2's own signature hands them on
        ≈ 100 ns sooner than the generic one (no packing of arguments)."""
        general = self._recording("dup2")(original)

        def dup2(fd: int, fd2: int, inheritable: bool = True) -> int:
            if fd2.__class__ is int and 0 <= fd2 <= 2:
                return original(fd, fd2, inheritable)
            result: int = general(fd, fd2, inheritable)
            return result

        functools.update_wrapper(dup2, original, assigned=(), updated=())
        dup2.__name__ = "dup2"
        dup2.__doc__ = getattr(original, "__doc__", None)
        return dup2

    def _recording_selector(self, original: Callable[..., None]) -> Callable[..., None]:
        recorder = self

        def __init__(selector: Any, *args: Any, **kwargs: Any) -> None:
            original(selector, *args, **kwargs)
            recorder.opens += 1
            if recorder.users > 0:
                with contextlib.suppress(Exception):
                    made = _made("selector", capture(sys._getframe(1)))
                    recorder._remember((selector.fileno(),), made)
                    recorder.selectors.add(selector)

        functools.update_wrapper(__init__, original, assigned=(), updated=())
        return __init__

    def _viewed(self, fd: int) -> None:
        if fd < 0 or self.views_overflowed:
            return
        st = os.fstat(fd)
        self.views.add((fd, st.st_dev, st.st_ino))
        if len(self.views) > _MAX_VIEWS:
            self.views_overflowed = True
            self.views.clear()

    def _recording_detach(self, original: Callable[[Any], int]) -> Callable[[Any], int]:
        """``socket.detach()``: the number lives on as a bare int. Noted where the test let go
        of it, so a leaked detached socket is reported as the test's, at that line, rather
        than as one made in C (which took a heap walk to prove)."""
        recorder = self

        def detach(sock: Any) -> int:
            fd = original(sock)
            if recorder.users > 0 and isinstance(fd, int) and fd >= 0:
                with contextlib.suppress(Exception):  # never break the caller's detach()
                    caller = sys._getframe(1)
                    if caller.f_code.co_filename.startswith(LEAKGUARD_DIR):
                        return fd  # leakguard's own look at someone's socket (probe_socket)
                    st = os.fstat(fd)
                    made = _made("detach", capture(caller))
                    # A socketpair's record (multiprocessing.Pipe detaches its pair) stays.
                    recorder.created.setdefault((fd, st.st_dev, st.st_ino), made)
            return fd

        functools.update_wrapper(detach, original, assigned=(), updated=())
        detach.__name__ = "detach"
        detach.__doc__ = getattr(original, "__doc__", None)
        return detach

    def _remember(self, results: tuple[Any, ...], made: Made) -> None:
        created = self.created
        for item in results:
            fd = item.fileno() if isinstance(item, socket.socket) else item
            if not isinstance(fd, int) or fd < 0:
                continue
            st = os.fstat(fd)
            created[fd, st.st_dev, st.st_ino] = made
        while len(created) > _MAX_CREATED:
            del created[next(iter(created))]

    def _replaced_epoch(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
        """Before a ``dup2``: who made the identity its target number has now (None: closed)."""
        target = args[1] if len(args) > 1 else kwargs.get("fd2")
        if not isinstance(target, int) or target <= 2:
            return None  # capture's dup2 onto 1 and 2: never tracked, never stat'ed
        try:
            st = os.fstat(target)
            made = self.created.get((target, st.st_dev, st.st_ino))
            if made is None:
                path = os.readlink(f"/proc/self/fd/{target}")
                made = self.paths.get(path)
            if made is None:
                found = self.socket_for(target)
                made = found[1] if found is not None else None
        except OSError:
            return None
        except Exception:
            made = None
        return made.epoch if made is not None else NO_EPOCH

    # --- lookups (only for what is new after a test) -----------------------------------------
    def for_key(self, key: FdKey) -> Made | None:
        return self.created.get(key)

    def for_path(self, path: str, *, resolve: bool = True) -> Made | None:
        """Who last opened ``path`` (as ``/proc/self/fd`` shows it: resolved)."""
        found = self.paths.get(path)
        if found is not None or not resolve:
            return found
        # Opened through a symlink or with ``..``: resolve the recorded names, newest first.
        for name in reversed(list(self.paths)):
            try:
                if os.path.realpath(name) == path:
                    return self.paths.get(name)
            except (OSError, ValueError):
                continue
        return None

    def for_mapping(self, key: FdKey, st_mode: int) -> Made | None:
        """For an ``mmap``'s private copy of the number it maps (no call of ours sees it made):
        the record of the ``memfd_create`` that made the same file, newest first. A file opened
        by path is found by its path before this is asked.

        Only for a regular file: every epoll, eventfd, inotify … shares one anonymous inode, so
        matching those by ``(st_dev, st_ino)`` would hand a selector's record to an epoll made
        in C (which cannot be mapped anyway).
        """
        if not stat.S_ISREG(st_mode):
            return None
        file = (key[1], key[2])
        for (_, dev, ino), made in reversed(list(self.created.items())):
            if (dev, ino) == file and made.how == "memfd_create":
                return made
        return None

    def unowned(self, key: FdKey) -> bool:
        """Proven from the records alone that no Python object of the kinds that own sockets
        holds ``key``: no recorded socket object has its number, no file object was made over
        it, and multiprocessing's ``Connection`` (which holds bare ints) is not in use.

        Every socket object made while recording went through ``socket.socket.__init__``
        (only a bare ``_socket.socket``, which nothing in the stdlib makes, would not), and
        one made earlier cannot hold a descriptor that is new since. Saves the heap walk
        (≈ 50 ms on a large heap) that would prove the same; when in doubt (``False``), the
        walk decides.
        """
        if self.users <= 0 or self.views_overflowed or key in self.views:
            return False
        if "multiprocessing.connection" in sys.modules:
            return False
        return self.socket_for(key[0]) is None

    def selectors_holding(self, fds: set[int]) -> dict[int, Any]:
        """The selector made while recording whose ``epoll`` (``devpoll``, ``kqueue``:
        `compat.selector_poller`) holds each of ``fds``, where one does."""
        found: dict[int, Any] = {}
        for selector in _copied(lambda: list(self.selectors)):
            polling = compat.selector_poller(selector)
            try:
                fd = polling.fileno()
            except Exception:  # closed (ValueError), or not what the stdlib makes
                continue
            if fd in fds:
                found[fd] = selector
        return found

    def socket_for(self, fd: int) -> tuple[Any, Made] | None:
        """The live Python socket object that owns ``fd`` now, with how it was made."""
        found: tuple[Any, Made] | None = None
        for sock, made in _copied(lambda: list(self.sockets.items())):
            try:
                if sock.fileno() == fd:
                    found = (sock, made)  # the newest match wins: older ones were closed
            except Exception:  # a closed, detached or half-made socket: not the owner
                continue
        return found


def _like(wrapper: Callable[..., T], original: Callable[..., Any]) -> Callable[..., T]:
    """``wrapper`` named as ``original`` (module, name, qualified name, doc), so pickling it by
    reference and ``help()`` find what they found before."""
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        with contextlib.suppress(AttributeError, TypeError):
            setattr(wrapper, attr, getattr(original, attr))
    return wrapper


def _copied(copy: Callable[[], list[T]]) -> list[T]:
    """``copy()`` of a weak collection, tried again if a garbage collection shrank the
    collection while it was being copied; empty if it kept doing so."""
    for _ in range(3):
        try:
            return copy()
        except RuntimeError:
            continue
    return []


RECORDER = OriginRecorder()
# The process's one recorder: the functions it wraps are process-wide, so there is only one.

"""Where a resource was created: captured cheaply as code objects and line numbers, formatted
only when reported."""

from __future__ import annotations

import functools
import os
import site
import sys
import threading
from collections.abc import Iterable, Mapping
from types import CodeType, FrameType
from typing import Any

from leakguard.core import compat
from leakguard.core.records import dataclass_on_first_use

RawOrigin = (
    tuple[CodeType, int]
    | tuple[CodeType, int, "CodeType | None", int, "tuple[str, RawOrigin | None] | None"]
)
"""``(code, line)``, or ``(code, line, user_code, user_line, thread)``: the first frame outside
the standard library; when that frame is in an installed package, the first frame of the user's
own code that called it; and, when captured on a thread other than the main one, that thread's
name and where it was started.

A negative ``line`` is ``-1 - offset``: the frame's instruction offset (``f_lasti``), turned
into a line number only when the origin is formatted (`Origin.from_raw`). Reading ``f_lineno``
walks the code's line table from its start: 0.2 µs in a small function, 15 µs near the end of a
3,000-line module, on every thread start, socket and task, for origins that are rarely shown;
``f_lasti`` costs 0.04 µs."""

THREAD_ORIGIN_ATTR = "_leakguard_origin"
"""Set on every ``Thread`` started while leakguard is installed: where ``start()`` was called."""

LEAKGUARD_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
"""The folder of the leakguard package: its frames are never an origin, its calls never a record."""


@dataclass_on_first_use(frozen=True)
class Origin:
    """A source location: ``file:line in function``, with the user's call into a library and
    the thread it ran on, when those say more."""

    filename: str
    lineno: int
    function: str
    caller: Origin | None = None
    """The first frame of the user's own code, when the location is inside a package."""
    thread: str = ""
    """``'worker-1' (started at tests/test_api.py:20)`` when made on a thread, not the main one."""

    def format(self, root: str | None = None) -> str:
        text = f"{shorten_path(self.filename, root)}:{self.lineno} in {self.function}"
        if self.caller is not None:
            text += f", called from {self.caller.format(root)}"
        if self.thread:
            text += f", in thread {self.thread}"
        return text

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "filename": self.filename,
            "lineno": self.lineno,
            "function": self.function,
        }
        if self.caller is not None:
            data["caller"] = self.caller.to_dict()
        if self.thread:
            data["thread"] = self.thread
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Origin:
        caller = data.get("caller")
        return cls(
            str(data["filename"]),
            int(data["lineno"]),
            str(data["function"]),
            cls.from_dict(caller) if caller else None,
            str(data.get("thread", "")),
        )

    @classmethod
    def from_raw(cls, raw: RawOrigin) -> Origin:
        code, lineno = raw[0], raw[1]
        if lineno < 0:
            lineno = _line_at(code, -1 - lineno)
        caller: Origin | None = None
        thread = ""
        if len(raw) == 5:
            user_code, user_line, on_thread = raw[2], raw[3], raw[4]
            if user_code is not None:
                caller = cls.from_raw((user_code, user_line))
            if on_thread is not None:
                name, started = on_thread
                where = f" (started at {cls.from_raw(started).format()})" if started else ""
                thread = f"{name!r}{where}"
        return cls(code.co_filename, lineno, _name(code), caller, thread)


def _line_at(code: CodeType, offset: int) -> int:
    """The line of the instruction at ``offset`` (what ``f_lineno`` says for that frame)."""
    for start, end, line in code.co_lines():
        if start <= offset < end:
            return line if line is not None else code.co_firstlineno
    return code.co_firstlineno


def _name(code: CodeType) -> str:
    return getattr(code, "co_qualname", code.co_name)


def shorten_path(filename: str, root: str | None = None) -> str:
    """A path relative to ``root`` (default: the working directory) when it lies below it."""
    base = root or os.getcwd()
    try:
        rel = os.path.relpath(filename, base)
    except ValueError:
        return filename
    return filename if rel.startswith(os.pardir) else rel


def _python_folders() -> tuple[set[str], set[str]]:
    """The standard library's folders, and the installed packages' folders.

    Where ``os`` and ``site`` say they are; ``sysconfig`` (what they agree with) only when
    they cannot say: importing it costs ≈ 1 ms of every checked run's start-up.
    """
    os_file = getattr(os, "__file__", None)
    getsitepackages = getattr(site, "getsitepackages", None)
    if not os_file or getsitepackages is None:
        import sysconfig

        paths = sysconfig.get_paths()
        stdlib = {paths[k] for k in ("stdlib", "platstdlib") if k in paths}
        return stdlib, {paths[k] for k in ("purelib", "platlib") if k in paths}
    return {os.path.dirname(os_file)}, set(getsitepackages())


def _prefixes(folders: set[str]) -> tuple[str, ...]:
    """Each folder as written and resolved, ending in a separator (for ``startswith``)."""
    both = folders | {os.path.realpath(p) for p in folders}
    return tuple(p.rstrip(os.sep) + os.sep for p in both)


# Resolved once, at import (on the main thread): a lookup must never touch the file system,
# because it runs inside ``Thread.start`` on any thread, event loops included.
_STDLIB_FOLDERS, _PACKAGE_FOLDERS = _python_folders()
STDLIB_PREFIXES = _prefixes(_STDLIB_FOLDERS)
PACKAGE_PREFIXES = _prefixes(_PACKAGE_FOLDERS)


@functools.lru_cache(maxsize=8192)
def is_library_frame_file(filename: str) -> bool:
    """True for the standard library and leakguard itself: frames an origin skips over.

    Third-party packages (site-packages) are *not* skipped: a thread started by ``myapp``'s
    server module is reported at that line, as users expect. Pure string tests: no
    ``realpath``, no ``stat`` (blockbuster-style checks forbid blocking calls in a loop).
    """
    if filename.startswith("<"):
        return True  # <frozen ...>, <string>: no useful location
    if filename.startswith(LEAKGUARD_DIR):
        return True
    if is_package_file(filename):
        return False
    return filename.startswith(STDLIB_PREFIXES)


def is_package_file(filename: str) -> bool:
    """An installed package's file (site-packages): not the user's own code."""
    return filename.startswith(PACKAGE_PREFIXES) or "-packages" + os.sep in filename


_in_package = functools.lru_cache(maxsize=8192)(is_package_file)
"""`is_package_file`, cached: asked once per capture (every task, thread and socket)."""


_USERS, _LIBRARY, _RUNNER = 0, 1, 2
"""What a frame is to the walk up to the user's code (`_walk_kind`): the user's code (the walk
ends there, found), a library (it goes on), the test runner (it ends there, nothing found)."""

_RUNNER_PREFIXES: tuple[str, ...] = ()


def set_test_runner(folders: Iterable[str]) -> None:
    """The folders of the test runner's own code (pytest's ``_pytest``): the walk from a
    library frame up to the user's code stops at the first frame in them.

    Everything above such a frame is the runner and whatever started it, never code that
    called the library: a test and its fixtures run *below* the runner's frames, and a user's
    frame found above them (a script calling ``pytest.main()``) would be the wrong answer. It
    is also the cost: a resource a library makes with no user frame below the runner (a
    fixture of an installed plugin, a test suite that ships inside its package) walked the
    ~30 frames of pytest's runner to the walk's bound, on every socket, task and thread.
    pluggy is not a runner: applications are built on it too.
    """
    global _RUNNER_PREFIXES
    _RUNNER_PREFIXES = _prefixes(set(folders))
    _walk_kind.cache_clear()
    _MODULE_KINDS.clear()


@functools.lru_cache(maxsize=8192)
def _walk_kind(filename: str) -> int:
    """`_USERS`, `_LIBRARY` (the stdlib, leakguard, an installed package) or `_RUNNER`: one
    cached call per frame of the walk up to the user's code."""
    if _RUNNER_PREFIXES and filename.startswith(_RUNNER_PREFIXES):
        return _RUNNER
    if is_library_frame_file(filename) or is_package_file(filename):
        return _LIBRARY
    return _USERS


_MODULE_KINDS: dict[str, int] = {}
"""`_walk_kind` of a module's ``__file__``, as the walk up to the user's code meets them.

A plain dict read through its bound ``get``: the walk asks once per frame, ~15 frames a
capture from an event loop's callbacks up to pytest's runner, and calling an ``lru_cache``
builds an argument tuple each time. It holds one entry per module file met, so it stays as
small as the set of loaded modules. Only ``str`` keys: a module's ``__file__`` of another type
is never hashed or compared (that would run its class's code inside the walk)."""


def _module_kind(module_file: str) -> int:
    """What a frame of a module whose ``__file__`` is ``module_file`` is to the walk (learnt
    once)."""
    kind = _MODULE_KINDS[module_file] = _walk_kind(module_file)
    return kind


def capture(frame: FrameType | None = None, limit: int = 40) -> RawOrigin | None:
    """The first frame above ``frame`` (default: the caller) outside the stdlib and leakguard;
    if that one is in an installed package, also the user's frame that called into it; and the
    thread, when it is not the main one. The walk up to the user's frame ends at the test
    runner's code (`set_test_runner`).

    A raw walk over ``f_back`` costs ≈ 1–2 µs; ``traceback.extract_stack`` costs ~10×.

    Frames are skipped by their module's ``__file__`` where it has one, and only a frame that
    may be kept has its ``f_code`` read: reading ``f_code`` raises an audit event, and with any
    audit hook in the process (leakguard adds none, but the user's tools may) each read costs
    ≈ 0.2 µs, not 0.02 µs, on walks that pass ~30 frames up from a server's event loop. The
    kept frame's own file decides (code a library ``exec``s in a module's namespace is
    ``<string>``).
    """
    f: FrameType | None = frame if frame is not None else sys._getframe(1)
    skipped = is_library_frame_file
    while f is not None and limit > 0:
        module_file = f.f_globals.get("__file__")
        if type(module_file) is not str or not skipped(module_file):
            code = f.f_code
            if not skipped(code.co_filename):
                break
        f = f.f_back
        limit -= 1
    else:
        return None
    lineno = -1 - f.f_lasti  # resolved when formatted (see `RawOrigin`)
    on_thread = _thread_info()
    if _in_package(code.co_filename):
        known = _MODULE_KINDS.get
        user = f.f_back
        for _ in range(limit):  # the fewest operations a frame: this loop is most of a capture
            if user is None:
                break
            module_file = user.f_globals.get("__file__")
            if type(module_file) is str:
                kind = known(module_file)
                if kind is None:
                    kind = _module_kind(module_file)
            else:  # no file of its own (or not a str): the code's file decides, below
                kind = _USERS
            if kind == _LIBRARY:
                user = user.f_back
                continue
            if kind == _RUNNER:
                break
            user_code = user.f_code  # the user's module: the code's own file decides
            kind = _walk_kind(user_code.co_filename)
            if kind == _USERS:
                return code, lineno, user_code, -1 - user.f_lasti, on_thread
            if kind == _RUNNER:
                break
            user = user.f_back
    return (code, lineno) if on_thread is None else (code, lineno, None, 0, on_thread)


_MAIN_IDENT = threading.main_thread().ident


def _thread_info() -> tuple[str, RawOrigin | None] | None:
    ident = threading.get_ident()
    if ident == _MAIN_IDENT:
        return None
    thread = compat.thread_by_ident(ident)
    if thread is None:
        return None
    return thread.name, getattr(thread, THREAD_ORIGIN_ATTR, None)

"""Where a resource was created: captured cheaply as (code, line), formatted only when reported."""

from __future__ import annotations

import functools
import os
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any

RawOrigin = tuple[CodeType, int]

_LEAKGUARD_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


@dataclass(frozen=True)
class Origin:
    """A source location: ``file:line in function``."""

    filename: str
    lineno: int
    function: str

    def format(self, root: str | None = None) -> str:
        return f"{shorten_path(self.filename, root)}:{self.lineno} in {self.function}"

    def to_dict(self) -> dict[str, Any]:
        return {"filename": self.filename, "lineno": self.lineno, "function": self.function}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Origin:
        return cls(str(data["filename"]), int(data["lineno"]), str(data["function"]))

    @classmethod
    def from_raw(cls, raw: RawOrigin) -> Origin:
        code, lineno = raw
        return cls(code.co_filename, lineno, getattr(code, "co_qualname", code.co_name))


def shorten_path(filename: str, root: str | None = None) -> str:
    """A path relative to ``root`` (default: the working directory) when it lies below it."""
    base = root or os.getcwd()
    try:
        rel = os.path.relpath(filename, base)
    except ValueError:
        return filename
    return filename if rel.startswith(os.pardir) else rel


def _stdlib_prefixes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The standard library's folders, as written and resolved; and the package folders in it."""
    paths = sysconfig.get_paths()
    stdlib = {paths[k] for k in ("stdlib", "platstdlib") if k in paths}
    stdlib |= {os.path.realpath(p) for p in stdlib}
    packages = {paths[k] for k in ("purelib", "platlib") if k in paths}
    packages |= {os.path.realpath(p) for p in packages}
    return (
        tuple(p.rstrip(os.sep) + os.sep for p in stdlib),
        tuple(p.rstrip(os.sep) + os.sep for p in packages),
    )


# Resolved once, at import (on the main thread): a lookup must never touch the file system,
# because it runs inside ``Thread.start`` on any thread, event loops included.
_STDLIB, _PACKAGES = _stdlib_prefixes()


@functools.lru_cache(maxsize=8192)
def is_library_frame_file(filename: str) -> bool:
    """True for the standard library and leakguard itself: frames an origin skips over.

    Third-party packages (site-packages) are *not* skipped: a thread started by ``myapp``'s
    server module is reported at that line, as users expect. Pure string tests: no
    ``realpath``, no ``stat`` (blockbuster-style checks forbid blocking calls in a loop).
    """
    if filename.startswith("<"):
        return True  # <frozen ...>, <string>: no useful location
    if filename.startswith(_LEAKGUARD_DIR):
        return True
    if filename.startswith(_PACKAGES) or "-packages" + os.sep in filename:
        return False
    return filename.startswith(_STDLIB)


def capture(frame: FrameType | None = None, limit: int = 40) -> RawOrigin | None:
    """The first frame above ``frame`` (default: the caller) outside the stdlib and leakguard.

    A raw walk over ``f_back`` costs ≈ 1–2 µs; ``traceback.extract_stack`` costs ~10×.
    """
    f: FrameType | None = frame if frame is not None else sys._getframe(1)
    while f is not None and limit > 0:
        code = f.f_code
        if not is_library_frame_file(code.co_filename):
            return code, f.f_lineno
        f = f.f_back
        limit -= 1
    return None

"""Dataclasses made on first use: the public records only a leak path creates.

On Python 3.10–3.12 defining a dataclass compiles each of its generated methods (``exec`` of
their source): a frozen one with a few fields costs ≈ 4 M instructions (≈ 1 ms), and every
checked run defined `Resource`, `Conclusion`, `Origin` and `IgnoreRule` at start-up, though a
run that leaks nothing never makes one. `dataclass_on_first_use` defines the class as written
and turns it into the very dataclass ``@dataclass`` would have made when the first instance is
made (or `complete` is called: the leak path's loading does, with the collector paused). After
that it is an ordinary dataclass: ``dataclasses.fields``, ``replace`` and ``asdict`` work, and
instances cost what they always did.
"""

from __future__ import annotations

import dataclasses
import gc
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

__all__ = ["complete", "dataclass_on_first_use"]

C = TypeVar("C", bound=type)

_pending: list[tuple[Any, dict[str, Any]]] = []
_lock = threading.Lock()


def complete() -> None:
    """Turn every class still waiting into its dataclass (cheap when none is)."""
    if not _pending:
        return
    with _lock:
        was_enabled = gc.isenabled()
        gc.disable()  # compiling allocates: no collection may free a test's garbage unseen
        try:
            while _pending:
                cls, options = _pending.pop(0)
                del cls.__init__  # the first-use hook below; the dataclass puts its own
                dataclasses.dataclass(cls, **options)  # in place: the same class object
        finally:
            if was_enabled:
                gc.enable()


def _on_first_use(**options: Any) -> Callable[[C], C]:
    def defer(cls: C) -> C:
        klass: Any = cls

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            complete()
            klass.__init__(self, *args, **kwargs)  # the dataclass's own, installed just now

        klass.__init__ = __init__
        _pending.append((klass, options))
        return cls

    return defer


if TYPE_CHECKING:  # to type checkers it is ``@dataclass`` itself
    from dataclasses import dataclass as dataclass_on_first_use
else:
    dataclass_on_first_use = _on_first_use

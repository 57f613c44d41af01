"""The pytest run in progress, if any: ``leakguard.check()`` blocks join its registry (trackers a
conftest registered) and its problem reporting. Process-wide by nature: a stack, because
pytester runs pytest inside pytest."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leakguard.core.faults import InternalProblem
    from leakguard.core.registry import TrackerRegistry


class ActiveRun:
    """The run's registry and its problem reporting.

    A plain class: a dataclass costs 0.25-0.5 ms to define (Python 3.10-3.12), at start-up.
    """

    __slots__ = ("on_problem", "registry")

    def __init__(
        self, registry: TrackerRegistry, on_problem: Callable[[InternalProblem], None]
    ) -> None:
        self.registry = registry
        self.on_problem = on_problem


_STACK: list[ActiveRun] = []


def push(run: ActiveRun) -> None:
    _STACK.append(run)


def pop(run: ActiveRun) -> None:
    if run in _STACK:
        _STACK.remove(run)


def current() -> ActiveRun | None:
    return _STACK[-1] if _STACK else None

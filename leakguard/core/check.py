"""``leakguard.check``: the same checking outside pytest, as a context manager or decorator."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from contextlib import ContextDecorator
from types import TracebackType
from typing import Any, TypeVar

from leakguard.core import active
from leakguard.core.engine import Engine, Snapshot
from leakguard.core.faults import InternalProblem
from leakguard.core.lineage import LINEAGE
from leakguard.core.registry import TrackerRegistry
from leakguard.core.runstate import Run
from leakguard.core.settings import (
    DEFAULT_TRACKERS,
    Settings,
    parse_grace,
    parse_ignore,
    parse_trackers,
)
from leakguard.core.tracker import Conclusion
from leakguard.errors import LeakError, LeakguardInternalWarning

F = TypeVar("F", bound=Callable[..., Any])


class check(ContextDecorator):  # a lowercase name reads as the verb it is
    """Check a block (or a decorated function) for leaks; raise `LeakError` if any remain.

    >>> with leakguard.check(trackers=["threads"], grace=0.5):
    ...     run_something()
    """

    def __init__(
        self,
        trackers: Iterable[str] | None = None,
        *,
        grace: float = 1.0,
        cleanup: bool = True,
        ignore: Iterable[str] = (),
        registry: TrackerRegistry | None = None,
        name: str = "block",
    ) -> None:
        # Inside a pytest run: its registry, so trackers a conftest registered work here too.
        running = active.current()
        self._registry = registry or (running.registry if running else TrackerRegistry.default())
        known = self._registry.names()
        self.settings = Settings(
            trackers=parse_trackers(
                DEFAULT_TRACKERS if trackers is None else trackers, known, "trackers"
            ),
            grace=parse_grace(grace, "grace"),
            cleanup=bool(cleanup),
            ignore=parse_ignore(ignore, known, "ignore"),
        )
        self.name = name
        self.leaks: list[Conclusion] = []
        self.problems: list[InternalProblem] = []
        """leakguard's own faults during the block (also in the run's summary, or warned)."""
        self._engine: Engine | None = None
        self._before: Snapshot = {}
        self._epoch = 0

    def _recreate_cm(self) -> check:
        # A decorated function may run concurrently or recursively: each call gets its own block.
        clone = check.__new__(check)
        clone.__dict__.update(self.__dict__)
        clone.leaks = []
        clone.problems = []
        clone._engine = None
        return clone

    def __enter__(self) -> check:
        self._engine = Engine(self._registry, self._on_problem)
        self._engine.activate(self.settings.trackers)
        self._epoch = LINEAGE.begin()
        self._before = self._engine.snapshot(self.settings.trackers, "before", self.settings.grace)
        return self

    def _on_problem(self, problem: InternalProblem) -> None:
        self.problems.append(problem)
        running = active.current()
        if running is not None:
            running.on_problem(problem)
        else:
            warnings.warn(LeakguardInternalWarning(problem.message()), stacklevel=3)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        engine = self._engine
        assert engine is not None, "check.__exit__ without __enter__"
        try:
            found = engine.find_leaks(self._before, self.settings)
            # The same conclusion as a checked test's: whose, cleanup, residue, the report.
            findings = Run(engine).conclude(self.name, found, self.settings) if found else []
        finally:
            LINEAGE.end(self._epoch)
            engine.close()
        failing = [f for f in findings if f.kind == "leak" or f.action == "fail"]
        self.leaks = [r for f in failing for r in f.leaks]
        if failing and exc_type is None:
            # An exception already leaving the block is the real story: never replace it.
            raise LeakError("\n\n".join(f.message for f in failing), self.leaks)

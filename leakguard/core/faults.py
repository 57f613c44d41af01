"""Faults inside leakguard: what the summary shows whatever the warning filters."""

from __future__ import annotations

import traceback
from typing import Any


class InternalProblem:
    """A fault inside leakguard: shown in the summary whatever the warning filters.

    A plain class: a dataclass costs 0.25-0.5 ms to define (Python 3.10-3.12), at start-up.
    """

    __slots__ = ("disabled", "during", "error", "phase", "traceback", "tracker")

    def __init__(
        self,
        tracker: str,
        phase: str,
        error: str,
        during: str = "",
        disabled: bool = False,
        traceback: str = "",
    ) -> None:
        self.tracker = tracker
        self.phase = phase
        self.error = error
        self.during = during
        """The test (or fixture, or block) being checked, if any."""
        self.disabled = disabled
        self.traceback = traceback

    @classmethod
    def of(cls, exc: BaseException, phase: str, tracker: str = "", **extra: Any) -> InternalProblem:
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(tracker, phase, one_line(exc), traceback=trace, **extra)

    def message(self) -> str:
        where = f" during {self.during}" if self.during else ""
        if not self.tracker:
            return f"leakguard internal problem: {self.phase}{where}: {self.error}"
        tail = (
            f"; disabled: blind from {self.during or 'here'} on"
            if self.disabled
            else "; it keeps working"
        )
        return (
            f"leakguard internal problem: tracker {self.tracker!r}, {self.phase}{where}: "
            f"{self.error}{tail}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message(),
            "tracker": self.tracker,
            "phase": self.phase,
            "error": self.error,
            "during": self.during,
            "disabled": self.disabled,
            "traceback": self.traceback,
        }


def one_line(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]

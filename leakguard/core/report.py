"""The leak report: the text a user reads under ``ERROR at teardown``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from leakguard.core.tracker import Conclusion

_MAX_LABEL = 60
MAX_ROWS_PER_KIND = 10
"""Rows per kind in one report; the rest is counted (and all of it is in the JSON report)."""
FREED_NOTE = "the collector freed it; "
"""Starts a note with what a finalizer raised while leakguard collected garbage."""


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def format_leaks(
    owner: str,
    leaks: Sequence[Conclusion],
    *,
    cleanup_enabled: bool = True,
    root: str | None = None,
    notes: Sequence[str] = (),
) -> str:
    """Format like::

    leakguard: tests/test_api.py::test_start_server leaked 2 resources
      thread  'http-worker' (non-daemon)   started at tests/test_api.py:12 in test_start_server
      process 4711 'sleep 30' (child of test)   spawned at tests/test_api.py:15 in test_x
    cleanup: process 4711 terminated; thread still running (threads cannot be stopped)
    """
    lines = [f"leakguard: {owner} leaked {plural(len(leaks), 'resource')}"]
    kind_width = max(len(r.kind) for r in leaks) if leaks else 0
    label_width = min(max((len(r.label) for r in leaks), default=0), _MAX_LABEL)
    shown: dict[str, int] = {}
    # A note under many rows (e.g. "the process was out of descriptors") is printed once.
    note_counts = Counter(note for r in leaks for note in dict.fromkeys(r.notes))
    shared = [note for note, n in note_counts.items() if n > 1]
    for r in leaks:
        shown[r.kind] = shown.get(r.kind, 0) + 1
        if shown[r.kind] > MAX_ROWS_PER_KIND:
            continue
        where = f"{r.verb} at {r.origin.format(root)}" if r.origin else r.detail
        row = f"  {r.kind:<{kind_width}} {r.label:<{label_width}}"
        lines.append(f"{row}   {where}".rstrip() if where else row.rstrip())
        lines.extend(f"      {note}" for note in r.notes if note not in shared)
    for kind, count in shown.items():
        if count > MAX_ROWS_PER_KIND:
            more = count - MAX_ROWS_PER_KIND
            lines.append(f"  … and {more} more {kind}{'s' if more != 1 else ''} "
                         "(all in the JSON report)")  # fmt: skip
    lines.extend(f"  ({note_counts[note]} of them) {note}" for note in shared)
    if leaks:
        if cleanup_enabled:
            lines.append("cleanup: " + _outcomes([r.cleanup for r in leaks if r.cleanup]))
        else:
            lines.append("cleanup: off (leakguard_cleanup = false); the resources are still there")
    lines.extend(notes)
    return "\n".join(lines)


def _outcomes(outcomes: list[str]) -> str:
    """One per leak; past `MAX_ROWS_PER_KIND` leaks, equal ones are folded and the rest counted."""
    if not outcomes:
        return "nothing to do"
    if len(outcomes) <= MAX_ROWS_PER_KIND:
        return "; ".join(outcomes)
    counted = Counter(outcomes)
    parts = [o if n == 1 else f"{o} (×{n})" for o, n in counted.items()]
    if len(parts) > MAX_ROWS_PER_KIND:
        more = len(parts) - MAX_ROWS_PER_KIND
        parts = [*parts[:MAX_ROWS_PER_KIND], f"… and {more} more outcomes"]
    return "; ".join(parts)

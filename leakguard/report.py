"""The leak report: the text a user reads under ``ERROR at teardown``."""

from __future__ import annotations

from collections.abc import Sequence

from leakguard.tracker import Resource

_MAX_LABEL = 60


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def format_leaks(
    owner: str,
    leaks: Sequence[Resource],
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
    for r in leaks:
        where = f"{r.verb} at {r.origin.format(root)}" if r.origin else r.detail
        row = f"  {r.kind:<{kind_width}} {r.label:<{label_width}}"
        lines.append(f"{row}   {where}".rstrip() if where else row.rstrip())
        lines.extend(f"      {note}" for note in r.notes)
    if leaks:
        if cleanup_enabled:
            outcomes = [r.cleanup for r in leaks if r.cleanup]
            lines.append("cleanup: " + ("; ".join(outcomes) if outcomes else "nothing to do"))
        else:
            lines.append("cleanup: off (leakguard_cleanup = false); the resources are still there")
    lines.extend(notes)
    return "\n".join(lines)

"""Paired controls: one inner test file run without the lines that let it go, then as written."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest

# A line of an inner file, ini or conftest that ends with CASE_ONLY is what makes the case "not
# a leak": the control is the same text without it. A line that ends with CONTROL_ONLY stands in
# the control alone (where the case needs a replacement line, not just one line less).
CASE_ONLY = "# case only"
CONTROL_ONLY = "# control only"


@dataclass(frozen=True)
class Pair:
    """The control (the case-only lines dropped) and the case (as written) of one inner test."""

    control: pytest.RunResult
    case: pytest.RunResult


def _edit(text: str, keep: str, drop: str) -> str:
    lines = []
    for line in text.splitlines():
        stripped = line.rstrip()
        if stripped.endswith(drop):
            continue
        # Take the tag off: an ini value would keep an inline comment.
        lines.append(stripped.removesuffix(keep).rstrip() if stripped.endswith(keep) else line)
    return "\n".join(lines)


def _tag_of(line: str) -> str:
    return next((tag for tag in (CASE_ONLY, CONTROL_ONLY) if tag in line), "")


def control_text(text: str) -> str:
    """``text`` without its case-only lines."""
    return _edit(text, keep=CONTROL_ONLY, drop=CASE_ONLY)


def case_text(text: str) -> str:
    """``text`` without its control-only lines."""
    return _edit(text, keep=CASE_ONLY, drop=CONTROL_ONLY)


def run_pair(
    pytester: pytest.Pytester,
    run: Callable[..., pytest.RunResult],
    *,
    ini: str | None = None,
    conftest: str | None = None,
    case_args: Sequence[str] = (),
    **files: str,
) -> Pair:
    """Write ``files`` (module name -> source), ``ini`` and ``conftest`` twice and run each.

    First the control: case-only lines dropped, ``run()``. Then the case: control-only lines
    dropped, ``run(*case_args)``. Nothing else differs between the two runs.
    """
    texts = [text for text in (ini, conftest, *files.values()) if text is not None]
    tagged = [line for text in texts for line in text.splitlines() if _tag_of(line)]
    for line in tagged:
        if not line.rstrip().endswith(_tag_of(line)):
            raise ValueError(f"a pair's tag must end its line: {line.strip()!r}")
    if not tagged and not case_args:
        raise ValueError("the case and its control would be the same run")
    results: list[pytest.RunResult] = []
    for edit, args in ((control_text, ()), (case_text, tuple(case_args))):
        # Same names, new text: drop cached bytecode so the second run cannot read the first's.
        for cache in list(pytester.path.rglob("__pycache__")):
            shutil.rmtree(cache, ignore_errors=True)
        if ini is not None:
            pytester.makeini(edit(ini))
        if conftest is not None:
            pytester.makeconftest(edit(conftest))
        if files:
            pytester.makepyfile(**{name: edit(source) for name, source in files.items()})
        results.append(run(*args))
    return Pair(control=results[0], case=results[1])

"""Paired controls: one inner test file run without the lines that let it go, then as written."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pytest

# A line of an inner file, ini or conftest that ends with this tag is what makes the case "not
# a leak": the control is the same text without those lines (and without the tag in the case).
CASE_ONLY = "# case only"


@dataclass(frozen=True)
class Pair:
    """The control (the tagged lines dropped) and the case (as written) of one inner test."""

    control: pytest.RunResult
    case: pytest.RunResult


def control_text(text: str) -> str:
    """``text`` without its lines tagged :data:`CASE_ONLY`."""
    return "\n".join(line for line in text.splitlines() if not line.rstrip().endswith(CASE_ONLY))


def case_text(text: str) -> str:
    """``text`` as written, the tags taken off (an ini value would keep an inline comment)."""
    return "\n".join(line.rstrip().removesuffix(CASE_ONLY).rstrip() for line in text.splitlines())


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

    First the control: tagged lines dropped, ``run()``. Then the case: as written,
    ``run(*case_args)``. Nothing else differs between the two runs.
    """
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

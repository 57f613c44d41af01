"""Shared assertions on inner runs, and readable parameter tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest


def table(rows: Mapping[str, tuple[object, ...]]) -> list[Any]:
    """``{id: (values...)}`` as parameters with those ids: a table, not a wall of pytest.param."""
    return [pytest.param(*values, id=name) for name, values in rows.items()]


def assert_usage_error(result: pytest.RunResult, message: str) -> None:
    """pytest stopped at start-up with a usage error (exit 4) saying ``message``; no test ran."""
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    result.stdout.no_fnmatch_line("*passed*")


def assert_leaked(
    result: pytest.RunResult, owner: str, lines: list[str], *, passed: int = 1, errors: int = 1
) -> None:
    """``owner`` leaked exactly as many resources as ``lines`` match, reported in that order."""
    result.assert_outcomes(passed=passed, errors=errors)
    count = f"{len(lines)} resource" + ("" if len(lines) == 1 else "s")
    result.stdout.fnmatch_lines([f"leakguard: {owner} leaked {count}", *lines])

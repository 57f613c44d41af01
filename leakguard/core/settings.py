"""Settings: one frozen dataclass, and the parsers that turn ini, CLI and marker values into it.

Precedence, key by key: defaults < ini < CLI < the marker closest to the test. Every parser
names where a bad value came from (``source``), because the user has to find and fix it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from leakguard.core.tracker import Conclusion, Resource

Action = Literal["fail", "warn", "report"]
ACTIONS: tuple[Action, ...] = ("fail", "warn", "report")
DEFAULT_TRACKERS: tuple[str, ...] = ("threads", "tasks", "processes", "sockets", "ports", "fds")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A bad setting; the message names the option (or marker) and the bad value."""


@dataclass(frozen=True)
class IgnoreRule:
    """``TRACKER: REGEX`` — a resource of that tracker whose description matches is not a leak."""

    tracker: str
    pattern: re.Pattern[str]

    def matches(self, resource: Resource[Any] | Conclusion) -> bool:
        if self.tracker not in (resource.tracker, "*"):
            return False
        return self.pattern.search(resource.description) is not None


@dataclass(frozen=True)
class Settings:
    trackers: tuple[str, ...] = DEFAULT_TRACKERS
    action: Action = "fail"
    cleanup: bool = True
    grace: float = 1.0
    ignore: tuple[IgnoreRule, ...] = ()
    traceback: bool = True
    garbage_action: Action = "report"
    """For a descriptor freed only by the garbage collector (an unclosed object in a cycle)."""
    native_action: Action = "report"
    """For a descriptor made in C that no Python object holds: never closed, so by default
    only named in the summary (a warning would be a failure under ``-W error``)."""

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]  # keys checked by callers


def parse_trackers(
    value: str | Iterable[str], known: Collection[str], source: str
) -> tuple[str, ...]:
    names = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    result: list[str] = []
    for name in names:
        if not isinstance(name, str) or name not in known:
            raise SettingsError(
                f"{source}: unknown tracker {name!r}; known trackers: {', '.join(sorted(known))}"
            )
        if name not in result:
            result.append(name)
    return tuple(result)


def parse_action(value: object, source: str) -> Action:
    text = str(value).strip().lower()
    if text not in ACTIONS:
        raise SettingsError(
            f"{source}: {value!r} is not an action; use one of: {', '.join(ACTIONS)}"
        )
    return text


def parse_bool(value: object, source: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SettingsError(f"{source}: {value!r} is not a boolean; use true or false")


def parse_grace(value: object, source: str) -> float:
    if isinstance(value, bool):
        raise SettingsError(f"{source}: {value!r} is not a number of seconds")
    try:
        seconds = float(value)  # type: ignore[arg-type]  # any junk is reported just below
    except (TypeError, ValueError):
        raise SettingsError(f"{source}: {value!r} is not a number of seconds") from None
    if not seconds >= 0 or seconds == float("inf"):
        raise SettingsError(f"{source}: {value!r} must be a finite number of seconds >= 0")
    return seconds


def parse_ignore(
    lines: Iterable[object], known: Collection[str], source: str
) -> tuple[IgnoreRule, ...]:
    """Parse ``TRACKER: REGEX`` lines; blank lines and ``#`` comments are skipped."""
    rules: list[IgnoreRule] = []
    for number, raw in enumerate(lines, start=1):
        if not isinstance(raw, str):
            raise SettingsError(
                f"{source}, entry {number}: {raw!r} is not a 'TRACKER: REGEX' string"
            )
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tracker, sep, pattern = line.partition(":")
        tracker, pattern = tracker.strip(), pattern.strip()
        where = f"{source}, line {number} ({line!r})"
        if not sep or not tracker or not pattern:
            raise SettingsError(f"{where}: expected 'TRACKER: REGEX'")
        if tracker not in known:
            raise SettingsError(
                f"{where}: unknown tracker {tracker!r}; known trackers: {', '.join(sorted(known))}"
            )
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise SettingsError(f"{where}: bad regular expression: {exc}") from None
        rules.append(IgnoreRule(tracker, compiled))
    return tuple(rules)

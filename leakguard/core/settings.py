"""Settings: one immutable record, and the parsers that turn ini, CLI and marker values into it.

Precedence, key by key: defaults < ini < CLI < the marker closest to the test. Every parser
names where a bad value came from (``source``), because the user has to find and fix it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any, Literal

from leakguard.core.records import dataclass_on_first_use

if TYPE_CHECKING:
    from leakguard.core.tracker import Conclusion, Resource

Action = Literal["fail", "warn", "report"]
ACTIONS: tuple[Action, ...] = ("fail", "warn", "report")
DEFAULT_TRACKERS: tuple[str, ...] = ("threads", "tasks", "processes", "sockets", "ports", "fds")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A bad setting; the message names the option (or marker) and the bad value."""


@dataclass_on_first_use(frozen=True)
class IgnoreRule:
    """``TRACKER: REGEX`` — a resource of that tracker whose description matches is not a leak."""

    tracker: str
    pattern: re.Pattern[str]

    def matches(self, resource: Resource[Any] | Conclusion) -> bool:
        if self.tracker not in (resource.tracker, "*"):
            return False
        return self.pattern.search(resource.description) is not None


class Settings:
    """What a check does: trackers, action, cleanup, grace, ignores. Immutable; `replace` makes
    a changed copy.

    Written out rather than a frozen dataclass: every run makes one at start-up, and on Python
    3.10–3.12 defining that dataclass compiled six generated methods (≈ 4 M instructions).
    """

    __slots__ = _FIELDS = (
        "trackers",
        "action",
        "cleanup",
        "grace",
        "ignore",
        "traceback",
        "garbage_action",
        "native_action",
    )

    trackers: tuple[str, ...]
    action: Action
    cleanup: bool
    grace: float
    ignore: tuple[IgnoreRule, ...]
    traceback: bool
    garbage_action: Action
    """For a descriptor freed only by the garbage collector (an unclosed object in a cycle)."""
    native_action: Action
    """For a descriptor made in C that no Python object holds: never closed, so by default
    only named in the summary (a warning would be a failure under ``-W error``)."""

    def __init__(
        self,
        trackers: tuple[str, ...] = DEFAULT_TRACKERS,
        action: Action = "fail",
        cleanup: bool = True,
        grace: float = 1.0,
        ignore: tuple[IgnoreRule, ...] = (),
        traceback: bool = True,
        garbage_action: Action = "report",
        native_action: Action = "report",
    ) -> None:
        put = object.__setattr__  # frozen: `__setattr__` below refuses
        put(self, "trackers", trackers)
        put(self, "action", action)
        put(self, "cleanup", cleanup)
        put(self, "grace", grace)
        put(self, "ignore", ignore)
        put(self, "traceback", traceback)
        put(self, "garbage_action", garbage_action)
        put(self, "native_action", native_action)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._FIELDS)

    def replace(self, **changes: Any) -> Settings:
        unknown = changes.keys() - set(self._FIELDS)
        if unknown:
            raise TypeError(f"Settings has no field {sorted(unknown)[0]!r}")
        return Settings(**{name: changes.get(name, getattr(self, name)) for name in self._FIELDS})

    def __setattr__(self, name: str, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._FIELDS)
        return f"Settings({fields})"

    def __reduce__(self) -> tuple[type[Settings], tuple[Any, ...]]:
        return Settings, self._values()  # a copy or a pickle goes through __init__


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

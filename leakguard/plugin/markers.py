"""The two markers and the per-test plan they resolve to: is this test checked, and how.

Key by key, the ``leakguard`` marker closest to the test wins over the run's settings (which
already hold ini < CLI); ``ignore`` lines accumulate instead, so a test can add to the suite's.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pytest

from leakguard.core.settings import (
    Settings,
    SettingsError,
    parse_action,
    parse_bool,
    parse_grace,
    parse_ignore,
    parse_trackers,
)

MARKER_HELP = {
    "leakguard": (
        "leakguard(trackers=[...], ignore=[...], grace=1.0, action='fail', cleanup=True, "
        "traceback=True, native_action='report', garbage_action='report'): check this test "
        "for leaked resources, "
        "with these settings"
    ),
    "no_resource_tracking": (
        "no_resource_tracking(*trackers): do not check this test for leaks "
        "(or only not with the named trackers)"
    ),
}
FIXTURE_NAME = "leakguard"
MARKER_KEYS = (
    "trackers",
    "ignore",
    "grace",
    "action",
    "cleanup",
    "traceback",
    "native_action",
    "garbage_action",
)


class Plan:
    """How one test is checked; a test that is not checked has no plan at all.

    A plain class: a dataclass costs 0.25-0.5 ms to define (Python 3.10-3.12), at start-up.
    """

    __slots__ = ("settings",)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings


_LAST_PLAN: list[Plan] = []


def _plan_of(base: Settings) -> Plan:
    """One `Plan` for every test that runs with the run's settings as they are (most do)."""
    if not _LAST_PLAN or _LAST_PLAN[0].settings is not base:
        _LAST_PLAN[:] = [Plan(base)]
    return _LAST_PLAN[0]


def _marker_value(key: str, value: Any, known: Collection[str], source: str) -> object:
    where = f"{source} argument {key}={value!r}"
    if key == "trackers":
        if isinstance(value, str):
            value = value.split()
        if not isinstance(value, (list, tuple)):
            raise SettingsError(f"{where}: expected a list of tracker names")
        return parse_trackers(value, known, where)
    if key == "ignore":
        lines = [value] if isinstance(value, str) else value
        if not isinstance(lines, (list, tuple)):
            raise SettingsError(f"{where}: expected a list of 'TRACKER: REGEX' strings")
        return parse_ignore(lines, known, where)
    if key == "grace":
        return parse_grace(value, where)
    if key in ("action", "native_action", "garbage_action"):
        return parse_action(value, where)
    if not isinstance(value, bool):
        raise SettingsError(f"{where}: expected True or False")
    return parse_bool(value, where)


NAMES = ("leakguard", "no_resource_tracking")


def inherited_marks(node: pytest.Item | pytest.Collector) -> list[pytest.Mark]:
    """Our marks on ``node`` and every node above it, closest first: what each test collected
    under ``node`` inherits (one walk per collector, not one per test)."""
    return [m for m in node.iter_markers() if m.name in NAMES]


def plan_for(
    item: pytest.Item,
    base: Settings,
    globally_on: bool,
    known: Collection[str],
    inherited: list[pytest.Mark] | None = None,
) -> Plan | None:
    """Resolve the plan of ``item``; raise `SettingsError` naming the marker and argument.

    ``inherited``: `inherited_marks` of the item's parent, when the caller has them.
    """
    if inherited is None:  # one walk over every node up to the session, for both names
        ours = inherited_marks(item)
    else:  # iter_markers' order: the item's own marks first, then its parents'
        ours = [m for m in item.own_markers if m.name in NAMES]
        ours += inherited
    if not ours:  # the usual test: no marker of ours on it or above it, the run's settings
        if globally_on or FIXTURE_NAME in getattr(item, "fixturenames", ()):
            return _plan_of(base)
        return None
    marked = False
    chosen: dict[str, object] = {}
    extra_ignore: list[Any] = []
    for mark in ours:  # closest first
        if mark.name != "leakguard":
            continue
        marked = True
        source = "@pytest.mark.leakguard"
        if mark.args:
            raise SettingsError(f"{source} takes keyword arguments only, got {mark.args!r}")
        for key, value in mark.kwargs.items():
            if key not in MARKER_KEYS:
                raise SettingsError(
                    f"{source}: unknown argument {key!r}; known: {', '.join(MARKER_KEYS)}"
                )
            parsed = _marker_value(key, value, known, source)
            if key == "ignore":
                assert isinstance(parsed, tuple)
                extra_ignore.extend(parsed)
            elif key not in chosen:
                chosen[key] = parsed

    off: set[str] = set()
    all_off = False
    for mark in ours:
        if mark.name != "no_resource_tracking":
            continue
        if mark.kwargs:
            raise SettingsError(
                f"@pytest.mark.no_resource_tracking takes tracker names only, got {mark.kwargs!r}"
            )
        if not mark.args:
            all_off = True
        names = [
            a for name in mark.args for a in (name.split() if isinstance(name, str) else [name])
        ]
        off.update(parse_trackers(names, known, "@pytest.mark.no_resource_tracking"))

    checked = globally_on or marked or FIXTURE_NAME in getattr(item, "fixturenames", ())
    if not checked or all_off:
        return None
    settings = base.replace(**chosen) if chosen else base
    if extra_ignore:
        settings = settings.replace(ignore=(*settings.ignore, *extra_ignore))
    if off:
        settings = settings.replace(trackers=tuple(t for t in settings.trackers if t not in off))
    return Plan(settings)

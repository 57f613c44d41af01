"""The object the ``leakguard`` fixture gives a test: ignore, snapshot and check mid-test."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from leakguard.core.runstate import Run, TestState
from leakguard.core.settings import IgnoreRule, SettingsError, parse_ignore
from leakguard.core.tracker import Resource
from leakguard.errors import LeakError


class LeakguardHandle:
    def __init__(self, run: Run, state: TestState | None, known: Collection[str]) -> None:
        self._run = run
        self._state = state
        self._known = known

    def ignore(self, obj_or_pattern: object) -> None:
        """Let one thread, task, process, socket (the object) or a pattern go for this test.

        A pattern is ``"TRACKER: REGEX"`` or a bare regex matched against every tracker's
        descriptions.
        """
        state = self._state
        if state is None:
            return
        if isinstance(obj_or_pattern, str):
            tracker, sep, _ = obj_or_pattern.partition(":")
            if sep and tracker.strip() in self._known:
                state.rules.extend(
                    parse_ignore([obj_or_pattern], self._known, "leakguard.ignore()")
                )
            else:
                try:
                    state.rules.append(IgnoreRule("*", re.compile(obj_or_pattern)))
                except re.error as exc:
                    raise SettingsError(
                        f"leakguard.ignore({obj_or_pattern!r}): bad regular expression: {exc}"
                    ) from None
            return
        found = self._run.engine.identify(obj_or_pattern, state.settings.trackers)
        if found is None:
            raise TypeError(
                f"leakguard.ignore(): no active tracker knows {obj_or_pattern!r}; "
                "pass a thread, task, process, socket, or a 'TRACKER: REGEX' pattern"
            )
        name, key = found
        state.exclude.setdefault(name, set()).add(key)

    def snapshot(self) -> dict[str, list[Resource[Any]]]:
        """Every resource the active trackers see now, described."""
        trackers = self._state.settings.trackers if self._state else ()
        result: dict[str, list[Resource[Any]]] = {}
        for name, snap in self._run.engine.snapshot(trackers, "live").items():
            tracker = self._run.engine.tracker(name)
            if tracker is not None:
                result[name] = [tracker.describe(key, handle) for key, handle in snap.items()]
        return result

    def check(self) -> None:
        """Check now; raise `LeakError` for what leaked so far (cleaned up per the settings)."""
        if self._state is None:
            return
        failing = [f for f in self._run.check_now(self._state) if f.kind == "leak"]
        if failing:
            raise LeakError(
                "\n\n".join(f.message for f in failing), [r for f in failing for r in f.leaks]
            )

"""Who keeps a leak: a library's module state (its process-wide cache, not the test's leak) or
the application's (a leak, but one cleanup must leave alone), found by one holder search."""

from __future__ import annotations

from collections.abc import Sequence

from leakguard.core.faults import one_line
from leakguard.core.holders import find_holders
from leakguard.core.roster import Roster
from leakguard.core.stats import Stats, timing
from leakguard.core.tracker import Conclusion


class Keepers:
    """The holder searches of one engine, each conclusion searched once per check."""

    def __init__(self, roster: Roster) -> None:
        self._roster = roster
        # id() of the resources whose holders were searched already during this check (a search
        # is one heap walk per level); emptied when a check starts, while they are all alive.
        self._searched: set[int] = set()

    def new_check(self) -> None:
        self._searched.clear()

    def classify_known(self, leaks: Sequence[Conclusion]) -> None:
        """The leaks a tracker proves a library's cache directly (`Tracker.known_keeper`):
        no holder search for them, and no grace wait (see `Engine._conclude_found`)."""
        for conclusion in leaks:
            tracker = self._roster.instances.get(conclusion.tracker)
            if conclusion.category != "leak" or tracker is None:
                continue
            try:
                holder = tracker.known_keeper(conclusion.resource)
            except Exception as exc:  # then the holder search decides, as without the proof
                self._roster.report_fault(conclusion.tracker, "known_keeper", exc)
                continue
            if holder:
                conclusion.category = "cache"
                conclusion.holder = holder
                self._searched.add(id(conclusion))

    def classify(self, leaks: Sequence[Conclusion], root: str | None, stats: Stats | None) -> None:
        """Which leaks a library keeps in its module state: those are its process-wide cache.

        One bounded holder search for all of them, on the leak path only.
        """
        instances = self._roster.instances
        todo = [
            conclusion
            for conclusion in leaks
            if conclusion.category == "leak"
            and conclusion.tracker in instances
            and id(conclusion) not in self._searched
        ]
        if todo:
            with timing(stats, "owners"):  # a descriptor's owner object is a heap walk too
                self._classify(todo, root)

    def _classify(self, leaks: Sequence[Conclusion], root: str | None) -> None:
        searched: list[Conclusion] = []
        objects: list[object] = []
        for conclusion in leaks:
            tracker = self._roster.instances[conclusion.tracker]
            self._searched.add(id(conclusion))
            try:
                obj = tracker.owner_object(conclusion.resource)
            except Exception as exc:  # the search is best effort: say so on this resource
                conclusion.notes.append(f"owner search failed ({one_line(exc)})")
                self._roster.report_fault(conclusion.tracker, "owner_object", exc)
                continue
            if obj is not None:
                searched.append(conclusion)
                objects.append(obj)
        if not objects:
            return
        holders = find_holders(objects, root)
        for conclusion, holder in zip(searched, holders, strict=True):
            if holder is None or not holder.name:
                continue
            conclusion.reachable = holder.module
            if holder.library:
                conclusion.category = "cache"
                conclusion.holder = holder.name
            elif not holder.test_code:
                conclusion.kept_by = holder.name

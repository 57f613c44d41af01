"""Cross-test attribution: what an earlier test's lineage made after that test ended is its own."""

from __future__ import annotations

import bisect
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from leakguard.core.lineage import LINEAGE, NO_EPOCH
from leakguard.core.tracker import Conclusion, Key

if TYPE_CHECKING:
    from leakguard.core.baseline import Baseline
    from leakguard.core.engine import Engine, Snapshot
    from leakguard.core.settings import Settings

Owned = dict[str, dict[Key, Any]]


class TestEpochs:
    """Which checked test opened which epochs: a test's own, and those opened inside it (a
    ``leakguard.check`` block), up to the last one opened before it ended.

    One int pair and a node id per checked test: 10,000 tests hold well under a megabyte.
    """

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._spans: list[tuple[int, str]] = []  # (last epoch opened inside, node id)

    def begin(self, epoch: int, nodeid: str) -> None:
        self._starts.append(epoch)
        self._spans.append((epoch, nodeid))

    def end(self, epoch: int) -> None:
        starts = self._starts
        if starts and starts[-1] == epoch:  # tests end in the order they began: the last one
            self._spans[-1] = (LINEAGE.latest, self._spans[-1][1])
            return
        index = bisect.bisect_left(starts, epoch)  # but for a nested oddity
        if index < len(starts) and starts[index] == epoch:
            self._spans[index] = (LINEAGE.latest, self._spans[index][1])

    def test_of(self, created: int) -> str | None:
        """The test whose lineage ``created`` is, if it was a checked test's."""
        if created == NO_EPOCH or LINEAGE.for_fixture(created):
            return None  # nobody's, or a longer-lived fixture's (checked at its teardown)
        index = bisect.bisect_right(self._starts, created) - 1
        if index < 0:
            return None
        last, nodeid = self._spans[index]
        return nodeid if created <= last else None


Pairs = Mapping[str, tuple[Mapping[Key, Any], Mapping[Key, Any]]]
"""Per tracker, an older and a newer snapshot: what is in the newer one only is looked at."""


def changed_since(before: Snapshot, now: Mapping[str, Mapping[Key, Any]]) -> dict[str, Any]:
    """The pairs of the trackers whose ``now`` shows a key ``before`` lacks (identity first:
    an unchanged tracker hands back the very mapping it gave before)."""
    pairs: dict[str, Any] = {}
    for name, snap in now.items():
        old = before.get(name)
        if old is not None and snap is not old and not snap.keys() <= old.keys():
            pairs[name] = (old, snap)
    return pairs


def made_by_earlier_tests(
    engine: Engine,
    pairs: Pairs,
    epoch: int,
    epochs: TestEpochs,
    skip: Mapping[str, Collection[Key]],
) -> dict[str, Owned]:
    """``{earlier test: {tracker: {key: handle}}}`` for what is new in ``pairs`` but was made by
    the lineage of a checked test that opened before ``epoch``."""
    found: dict[str, Owned] = {}
    for name, (old, now) in pairs.items():
        tracker = engine.tracker(name)
        if tracker is None:
            continue
        ignored = skip.get(name, ())
        for key in now.keys() - old.keys():
            if key in ignored:
                continue
            try:
                made = tracker.creator_epoch(key, now[key])
            except Exception as exc:  # cross-test blame is a bonus: never the test's error
                engine.report_fault(name, "creator_epoch", exc)
                break
            if made is None or made >= epoch:
                continue  # unknown, or the test's own (then the check above decided)
            owner = epochs.test_of(made)
            if owner is not None:
                found.setdefault(owner, {}).setdefault(name, {})[key] = now[key]
    return found


def conclude_late(
    engine: Engine,
    owner: str,
    found: list[Conclusion],
    seen_after: str,
    baseline: Baseline | None,
    root: str | None,
) -> tuple[str, str, list[Conclusion]] | None:
    """``(action, message, leaks)`` for what ``owner``'s lineage made after it ended.

    Its report is gone and the test seen after must not be blamed: it is reported in the
    summary and the JSON (action ``report``, or ``baseline`` when known), and left as it is,
    because the code that made it (the thread ``owner`` left) is still running and may use it.
    Library caches, native descriptors and garbage-only finds are not repeated here.
    """
    engine.classify(found, root)
    leaks = [r for r in found if r.category == "leak"]
    if not leaks:
        return None
    after = "its check" if seen_after == owner else seen_after
    how = f"created during {owner}, seen after {after}"
    for resource in leaks:
        resource.owner = owner
        resource.notes.append(how)
        resource.cleanup = f"left as is ({how}; its test had ended)"
    known = baseline is not None and all(baseline.knows(owner, r) for r in leaks)
    from leakguard.core.report import format_leaks  # on the leak path: loaded by then

    message = format_leaks(owner, leaks, cleanup_enabled=True, root=root)
    return ("baseline" if known else "report"), message, leaks


def find_late(
    engine: Engine,
    pairs: Pairs,
    seen: tuple[str, int, Settings],
    epochs: TestEpochs,
    skip: Mapping[str, Collection[Key]],
    baseline: Baseline | None,
    root: str | None,
) -> list[tuple[str, str, str, list[Conclusion]]]:
    """``(earlier test, action, message, leaks)`` for what is new in ``pairs``, made by the
    lineage of a test older than ``seen`` (the node id it was seen after, the epoch before which
    it was made, the settings to check with), that outlives the grace period."""
    nodeid, epoch, settings = seen
    by_owner = made_by_earlier_tests(engine, pairs, epoch, epochs, skip)
    if not by_owner:
        return []
    merged: Owned = {}
    owner_of: dict[tuple[str, Key], str] = {}
    for owner, owned in by_owner.items():
        for name, items in owned.items():
            merged.setdefault(name, {}).update(items)
            owner_of.update({(name, key): owner for key in items})
    found = engine.find_survivors(merged, settings)
    late = []
    for owner in by_owner:
        mine = [r for r in found if owner_of.get((r.tracker, r.key)) == owner]
        concluded = conclude_late(engine, owner, mine, nodeid, baseline, root) if mine else None
        if concluded is not None:
            late.append((owner, *concluded))
    return late

"""The state of one pytest run: the engine, what higher-scoped fixtures own, residue, findings.

Kept free of hook functions: `leakguard.plugin.hooks` calls into it at the phase boundaries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from leakguard.core.aftermath import Aftermath
from leakguard.core.crosstest import Pairs, TestEpochs, changed_since, find_late
from leakguard.core.engine import Engine, Snapshot
from leakguard.core.lineage import LINEAGE
from leakguard.core.report import format_leaks, plural
from leakguard.core.settings import IgnoreRule, Settings
from leakguard.core.stats import timing
from leakguard.core.tracker import Conclusion, Key

if TYPE_CHECKING:
    from leakguard.core.baseline import Baseline
    from leakguard.core.timeline import Timeline  # timeline (issue 15)

GROWTH_LIMIT = 16
"""Alive resources one process-wide cache (or all native descriptors) may hold before each
further one a test adds is that test's leak: a cache is bounded, a leak is not."""


@dataclass
class Finding:
    """One owner's leaks, concluded: what the report says and what the summary and JSON keep.

    ``kind`` ``leak`` is the owner's own; ``kept`` holds what the owner made but does not own:
    library caches and native descriptors, named in the summary only (unless an action says).
    """

    owner: str
    action: str
    message: str
    leaks: list[Conclusion]
    residue: list[Conclusion]
    kind: str = "leak"

    def payload(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "action": self.action,
            "kind": self.kind,
            "message": self.message,
            "leaks": [r.to_dict() for r in self.leaks],
            "residue": [r.to_dict() for r in self.residue],
        }


@dataclass
class TestState:
    """A checked test between its setup snapshot and its teardown check."""

    nodeid: str
    settings: Settings
    before: Snapshot
    epoch: int = 0
    exclude: dict[str, set[Key]] = field(default_factory=dict)
    rules: list[IgnoreRule] = field(default_factory=list)
    residue_note: str | None = None
    residue_from: list[str] = field(default_factory=list)
    """Earlier tests whose residue was present when this test started (order mattered)."""
    findings: list[Finding] = field(default_factory=list)


@dataclass
class FixtureRecord:
    """What a class/module/package/session fixture created while it was set up."""

    owner: str
    settings: Settings
    owned: dict[str, Mapping[Key, Any]]


@dataclass
class ResidueEntry:
    owner: str
    resource: Conclusion


class Run:
    def __init__(
        self, engine: Engine, root: str | None = None, baseline: Baseline | None = None
    ) -> None:
        self.engine = engine
        self.root = root
        engine.root = root
        self.baseline = baseline
        self.current: TestState | None = None
        self.fixtures: dict[int, FixtureRecord] = {}
        self.finished: list[FixtureRecord] = []
        self.residue: dict[tuple[str, Key], ResidueEntry] = {}
        # What caches and native descriptors hold, by holder: to tell a bounded cache from
        # one that grows test after test (that growth is a leak).
        self.kept: dict[str, list[Conclusion]] = {}
        # Internal problems on an xdist worker, until a report carries them to the controller.
        self.pending_problems: list[dict[str, Any]] = []
        # Test epoch -> node id, and what earlier tests' lineage made, seen after a later test.
        self.epochs = TestEpochs()
        # Ports and pools of earlier leaks that are gone; lines for a failing test's report.
        self.aftermath = Aftermath()
        self.late: list[Finding] = []
        self._last_seen: tuple[str, Snapshot] | None = None
        self.reproduce: Callable[[str, list[str]], str] | None = None
        """Builds a leak report's last line: the command that runs this test again alone."""
        self.timeline: Timeline | None = None  # timeline (issue 15): set when a report shows it

    # --- tests -----------------------------------------------------------------------------
    def begin_test(self, nodeid: str, settings: Settings) -> TestState:
        stats = self.engine.stats
        if stats is not None:
            stats.tests += 1
        with timing(stats, "clean"):
            return self._begin_test(nodeid, settings)

    def _begin_test(self, nodeid: str, settings: Settings) -> TestState:
        epoch = LINEAGE.begin()
        self.engine.during = nodeid
        try:
            before = self.engine.snapshot(settings.trackers, "before", settings.grace)
        except BaseException:
            LINEAGE.end(epoch)
            raise
        state = TestState(nodeid, settings, before, epoch)
        self.epochs.begin(epoch, nodeid)
        last, self._last_seen = self._last_seen, None
        if last is not None:  # made after the last check looked: blamed before it hides here
            pairs = changed_since(last[1], before)
            if pairs:
                self._find_late(pairs, (last[0], epoch, settings), {})
        if self.residue:
            state.residue_note = self._residue_note(before, state.residue_from)
        self.current = state
        return state

    def end_test(self, state: TestState) -> list[Finding]:
        """Check the test, then any higher-scoped fixture finalized during its teardown."""
        stats = self.engine.stats
        if stats is None:
            return self._end_test(state)
        start = time.perf_counter()
        leak_path_before = sum(stats.seconds.values()) - stats.seconds["clean"]
        findings = self._end_test(state)
        elapsed = time.perf_counter() - start
        leak_path = sum(stats.seconds.values()) - stats.seconds["clean"] - leak_path_before
        stats.seconds["clean"] += elapsed - leak_path
        if findings:
            stats.flagged[state.nodeid] = elapsed
        return findings

    def _end_test(self, state: TestState) -> list[Finding]:
        self.current = None
        try:
            exclude = self._owned_keys(state.exclude)
            leaks = self.engine.find_leaks(
                state.before, state.settings, exclude=exclude, extra_rules=state.rules
            )
            if leaks:
                findings = self.conclude(state.nodeid, leaks, state.settings)
                if self.reproduce is not None:
                    line = self.reproduce(state.nodeid, state.residue_from)
                    for finding in findings:
                        if finding.kind == "leak" or finding.action != "report":
                            finding.message += "\n" + line
                state.findings.extend(findings)
            if self.engine.changed:
                seen = (state.nodeid, state.epoch, state.settings)
                self._find_late(changed_since(state.before, self.engine.changed), seen, exclude)
            # What the trackers show now (a fresh look only after a leak path): whatever an
            # earlier test's lineage makes from here to the next test's snapshot is new there.
            after = self.engine.seen
            if leaks or self.engine.changed:
                after = {**after, **self.engine.snapshot(self.engine.changed)}
            self._last_seen = (state.nodeid, after)
        finally:
            LINEAGE.end(state.epoch)
            self.epochs.end(state.epoch)
        if self.finished:
            state.findings.extend(self.check_finished_fixtures())
        return state.findings

    def _find_late(
        self, pairs: Pairs, seen: tuple[str, int, Settings], exclude: dict[str, set[Key]]
    ) -> None:
        """What an earlier test's lineage made, seen now: that test's, never this one's."""
        for owner, action, message, leaks in find_late(
            self.engine, pairs, seen, self.epochs, exclude, self.baseline, self.root
        ):
            for resource in leaks:  # left as is: residue of the earlier test from now on
                self.residue[resource.tracker, resource.key] = ResidueEntry(owner, resource)
            self.late.append(Finding(owner, action, message, leaks, list(leaks)))

    def check_now(self, state: TestState) -> list[Finding]:
        """A mid-test check (``leakguard.check()`` on the fixture handle)."""
        exclude = self._owned_keys(state.exclude)
        leaks = self.engine.find_leaks(
            state.before, state.settings, exclude=exclude, extra_rules=state.rules
        )
        if not leaks:
            return []
        for resource in leaks:  # reported once: the end-of-test check does not repeat them
            state.exclude.setdefault(resource.tracker, set()).add(resource.key)
        return self.conclude(state.nodeid, leaks, state.settings)

    # --- fixtures --------------------------------------------------------------------------
    def fixture_set_up(self, token: int, owner: str, before: Snapshot, settings: Settings) -> None:
        after = self.engine.snapshot(before, "after", settings.grace)
        owned: dict[str, Mapping[Key, Any]] = {}
        for name, snap in after.items():
            tracker = self.engine.tracker(name)
            if tracker is not None and name in before:
                try:
                    new = tracker.new_since(before[name], snap)
                except Exception as exc:  # the fixture's setup result stands
                    self.engine.report_fault(name, f"new_since ({owner} set up)", exc)
                    continue
                if new:
                    owned[name] = new
        if owned:
            self.fixtures[token] = FixtureRecord(owner, settings, owned)

    def fixture_finished(self, token: int) -> None:
        record = self.fixtures.pop(token, None)
        if record is not None:
            self.finished.append(record)

    def check_finished_fixtures(self) -> list[Finding]:
        findings = []
        while self.finished:
            record = self.finished.pop(0)
            leaks = self.engine.find_survivors(record.owned, record.settings)
            if leaks:
                findings.extend(self.conclude(record.owner, leaks, record.settings))
        return findings

    def _owned_keys(self, extra: dict[str, set[Key]]) -> dict[str, set[Key]]:
        if not self.fixtures:
            return extra
        merged: dict[str, set[Key]] = {name: set(keys) for name, keys in extra.items()}
        for record in self.fixtures.values():
            for name, keys in record.owned.items():
                merged.setdefault(name, set()).update(keys)
        return merged

    # --- after a leak ----------------------------------------------------------------------
    def conclude(self, owner: str, found: list[Conclusion], settings: Settings) -> list[Finding]:
        """Sort out whose each resource is, then for the owner's own: clean up, note residue,
        format (in that order). Caches and native descriptors are named, never touched."""
        self.engine.classify(found, self.root)
        for resource in found:
            resource.owner = owner
        self._grown(found)
        leaks = [r for r in found if r.category == "leak"]
        findings: list[Finding] = []
        if leaks:
            findings.append(self._conclude_leaks(owner, leaks, settings))
        natives = [r for r in found if r.category == "native"]
        if natives:
            message = format_leaks(owner, natives, cleanup_enabled=False, root=self.root)
            message = message.replace(" leaked ", " left native descriptors: ", 1)
            findings.append(
                Finding(owner, settings.native_action, message, natives, [], kind="native")
            )
        garbage = [r for r in found if r.category == "garbage"]
        if garbage:
            message = format_leaks(owner, garbage, cleanup_enabled=False, root=self.root)
            message = message.replace(
                " leaked ", " left to the garbage collector (close them explicitly): ", 1
            )
            findings.append(
                Finding(owner, settings.garbage_action, message, garbage, [], kind="garbage")
            )
        caches = [r for r in found if r.category == "cache"]
        if caches:
            findings.append(Finding(owner, "report", "", caches, [], kind="cache"))
        return findings

    def _conclude_leaks(self, owner: str, leaks: list[Conclusion], settings: Settings) -> Finding:
        residue: list[Conclusion] = []
        if settings.cleanup:
            for leak in leaks:
                if leak.kept_by and leak.cleanup is None:
                    # First rule: the app's module state is older than the test and shared by
                    # the tests after it; shutting down what it keeps breaks them.
                    leak.cleanup = (
                        f"left as is: kept by {leak.kept_by} (the application's module state; "
                        "closing it would break its next user)"
                    )
            # A resource with an outcome already (a grown cache's) is not leakguard's to touch.
            pools = self.aftermath.pools_of(leaks)
            self.engine.cleanup([r for r in leaks if r.cleanup is None], max(settings.grace, 0.5))
            residue = self.engine.still_present(leaks)
            self.aftermath.after_cleanup(owner, leaks, residue, pools)
        else:
            residue = list(leaks)  # left as they are: all of it stays for the tests after
        for resource in residue:
            self.residue[resource.tracker, resource.key] = ResidueEntry(owner, resource)
        action: str = settings.action
        notes: list[str] = []
        if self.baseline:
            known = [r for r in leaks if self.baseline.knows(owner, r)]
            for resource in known:
                resource.notes.append("(known: in the leakguard baseline)")
            if len(known) == len(leaks):
                action = "baseline"
            elif known:
                notes.append(f"{plural(len(leaks) - len(known), 'leak')} not in the baseline")
        message = format_leaks(
            owner, leaks, cleanup_enabled=settings.cleanup, root=self.root, notes=notes
        )
        return Finding(owner, action, message, leaks, residue)

    def _grown(self, found: list[Conclusion]) -> None:
        """A cache (or the native descriptors) past `GROWTH_LIMIT` alive: what this owner added
        is its leak. Never cleaned up all the same: the holder still owns it."""
        for resource in found:
            if resource.category in ("leak", "garbage"):
                continue
            group = resource.holder if resource.category == "cache" else "native descriptors"
            kept = self.kept.setdefault(group, [])
            kept.append(resource)
            if len(kept) > GROWTH_LIMIT:
                kept[:] = self.engine.still_present(kept)
            if len(kept) > GROWTH_LIMIT:
                what = f"process-wide cache {group}" if resource.category == "cache" else group
                resource.notes.append(
                    f"{what} keeps growing ({len(kept)} alive): left as is, reported as a leak"
                )
                resource.category = "leak"
                resource.cleanup = "left as is (its holder still owns it)"

    def _residue_note(self, before: Snapshot, owners: list[str]) -> str | None:
        present = []
        for (name, key), entry in list(self.residue.items()):
            if key in before.get(name, {}):
                present.append(f"{entry.resource.description} (from {entry.owner})")
                is_test = not entry.owner.startswith("fixture ")
                if is_test and entry.owner not in owners:
                    owners.append(entry.owner)
            else:
                del self.residue[name, key]
                self.aftermath.residue_gone(entry.owner, entry.resource)
        if not present:
            return None
        return (
            f"ran with residue from earlier tests ({plural(len(present), 'resource')}): "
            + "; ".join(present)
        )


def fixture_owner(argname: str, scope: str, baseid: str) -> str:
    where = f" in {baseid}" if baseid else ""
    return f"fixture {argname!r} ({scope}-scoped{where})"

"""The state of one pytest run: the engine, what higher-scoped fixtures own, residue, findings.

Kept free of hook functions: `leakguard.plugin.checking` calls into it at the phase boundaries.
What follows a leak (concluding, residue, aftermath) is imported once something is found
(`leakguard.core.leakpath`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from leakguard.core import leakpath
from leakguard.core.crosstest import Pairs, TestEpochs, changed_since, find_late
from leakguard.core.engine import Engine, Snapshot
from leakguard.core.lineage import LINEAGE
from leakguard.core.stats import take_waited_elsewhere
from leakguard.core.tracker import Conclusion, Key

if TYPE_CHECKING:
    from leakguard.core.aftermath import Aftermath
    from leakguard.core.baseline import Baseline
    from leakguard.core.conclude import Finding
    from leakguard.core.residue import Residue, ResidueEntry
    from leakguard.core.settings import IgnoreRule, Settings
    from leakguard.core.stats import Stats
    from leakguard.core.timeline import Timeline  # timeline (issue 15)


# The records below are plain classes, not dataclasses: on Python 3.10-3.12 defining a
# dataclass costs 0.25-0.5 ms, and every checked run's start-up paid that for each of them.


class TestState:
    """A checked test between its setup snapshot and its teardown check."""

    __slots__ = (
        "before",
        "epoch",
        "exclude",
        "findings",
        "nodeid",
        "residue",
        "residue_from",
        "rules",
        "settings",
    )  # fmt: skip

    def __init__(self, nodeid: str, settings: Settings, before: Snapshot, epoch: int = 0) -> None:
        self.nodeid = nodeid
        self.settings = settings
        self.before = before
        self.epoch = epoch
        self.exclude: dict[str, set[Key]] = {}
        self.rules: list[IgnoreRule] = []
        self.residue: list[ResidueEntry] = []
        """What earlier tests left in place that was still there when this test started."""
        self.residue_from: list[str] = []
        """Earlier tests whose residue was present when this test started (order mattered)."""
        self.findings: list[Finding] = []

    @property
    def residue_note(self) -> str | None:
        """A failing test's note on the residue it started with (made only when shown)."""
        if not self.residue:
            return None
        from leakguard.core.residue import note_of  # loaded: residue comes from a leak path

        return note_of(self.residue)


class FixtureRecord:
    """What a class/module/package/session fixture created while it was set up."""

    __slots__ = ("owned", "owner", "settings")

    def __init__(self, owner: str, settings: Settings, owned: dict[str, Mapping[Key, Any]]) -> None:
        self.owner = owner
        self.settings = settings
        self.owned = owned


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
        self.residue: Residue = {}
        # What caches and native descriptors hold, by holder: to tell a bounded cache from
        # one that grows test after test (that growth is a leak).
        self.kept: dict[str, list[Conclusion]] = {}
        # Internal problems on an xdist worker, until a report carries them to the controller.
        self.pending_problems: list[dict[str, Any]] = []
        # Test epoch -> node id, and what earlier tests' lineage made, seen after a later test.
        self.epochs = TestEpochs()
        # Ports and pools of earlier leaks that are gone; lines for a failing test's report.
        # Made by the first leak path (`aftermath_now`): until then there is none.
        self.aftermath: Aftermath | None = None
        self.late: list[Finding] = []
        self._last_seen: tuple[str, Snapshot] | None = None
        self.reproduce: Callable[[str, list[str]], str] | None = None
        """Builds a leak report's last line: the command that runs this test again alone."""
        self.timeline: Timeline | None = None  # timeline (issue 15): set when a report shows it

    # --- tests -----------------------------------------------------------------------------
    def time_with(self, stats: Stats) -> None:
        """Count leakguard's own cost (``--leakguard-stats``) from now on: each test's begin and
        end are timed. Without it the clean path runs no timing code at all, not even a test."""
        self.engine.stats = stats
        self.begin_test = self._timed_begin_test  # type: ignore[method-assign]
        self.end_test = self._timed_end_test  # type: ignore[method-assign]

    def _timed_begin_test(self, nodeid: str, settings: Settings) -> TestState:
        stats = self.engine.stats
        assert stats is not None
        stats.tests += 1
        with stats.timing("clean"):
            return self._begin_test(nodeid, settings)

    def _begin_test(self, nodeid: str, settings: Settings) -> TestState:
        epoch = LINEAGE.begin()
        self.engine.roster.during = nodeid  # named in internal problems
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
        if self.residue:  # only ever filled on the leak path, so its modules are loaded
            from leakguard.core.residue import residue_present

            state.residue = residue_present(
                self.residue, before, state.residue_from, self.aftermath_now()
            )
        self.current = state
        return state

    def _timed_end_test(self, state: TestState) -> list[Finding]:
        stats = self.engine.stats
        assert stats is not None
        start = time.perf_counter()
        leak_path_before = sum(stats.seconds.values()) - stats.seconds["clean"]
        findings = self._end_test(state)
        elapsed = time.perf_counter() - start
        # A grace period spent while the test ran (its runner about to cancel its tasks): the
        # test's leak path too, though no check of ours was running.
        elsewhere = take_waited_elsewhere()
        stats.seconds["grace"] += elsewhere
        elapsed += elsewhere
        leak_path = sum(stats.seconds.values()) - stats.seconds["clean"] - leak_path_before
        # What no phase of a leak path timed (its snapshots, the report, the late look) is leak
        # path too: only a test that never left the clean path counts as clean.
        stats.seconds["polls" if leak_path > 0.0 else "clean"] += elapsed - leak_path
        if findings:
            stats.flagged[state.nodeid] = elapsed
        elif leak_path > 0.0:
            stats.unflagged[state.nodeid] = elapsed
        return findings

    def _end_test(self, state: TestState) -> list[Finding]:
        self.current = None
        try:
            exclude = self._owned_keys(state.exclude) if self.fixtures else state.exclude
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

    begin_test = _begin_test
    """Snapshot before the test (`time_with` swaps in a timed one)."""
    end_test = _end_test
    """Check the test, then any higher-scoped fixture finalized during its teardown."""

    def _find_late(
        self, pairs: Pairs, seen: tuple[str, int, Settings], exclude: dict[str, set[Key]]
    ) -> None:
        """What an earlier test's lineage made, seen now: that test's, never this one's."""
        leakpath.load()
        from leakguard.core.conclude import Finding
        from leakguard.core.residue import ResidueEntry

        for owner, action, message, leaks in find_late(
            self.engine, pairs, seen, self.epochs, exclude, self.baseline, self.root
        ):
            for resource in leaks:  # left as is: residue of the earlier test from now on
                resource.release()
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
                if snap is before[name] or snap.keys() <= before[name].keys():
                    continue  # nothing new: the clean path
                leakpath.load()  # deciding what is new may describe (a socket's family)
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
        """Whose each resource is; the owner's own cleaned up, its residue noted, the report
        formatted (`leakguard.core.conclude`)."""
        leakpath.load()
        from leakguard.core.conclude import conclude

        return conclude(self, owner, found, settings)

    def aftermath_now(self) -> Aftermath:
        """The run's aftermath, made on the leak path (its module is loaded by then)."""
        if self.aftermath is None:
            from leakguard.core.aftermath import Aftermath

            self.aftermath = Aftermath()
        return self.aftermath


def fixture_owner(argname: str, scope: str, baseid: str) -> str:
    where = f" in {baseid}" if baseid else ""
    return f"fixture {argname!r} ({scope}-scoped{where})"

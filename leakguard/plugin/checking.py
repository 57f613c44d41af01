"""The run's machinery, imported once some test is checked: the run started, and the hooks
around each checked test (snapshot at the start of setup, before any fixture of the test; check
at the end of teardown, after every finalizer; raise there so pytest prints ``ERROR at teardown
of …``).

`leakguard.plugin.hooks` (pytest's entry point) stays light: a run with leakguard installed and
nothing checked never imports this module.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import _pytest
import pytest

from leakguard.core import origin
from leakguard.core.engine import Engine
from leakguard.core.faults import InternalProblem
from leakguard.core.lineage import LINEAGE
from leakguard.core.runstate import Run, TestState, fixture_owner
from leakguard.core.stats import Stats
from leakguard.errors import LeakWarning
from leakguard.plugin import markers
from leakguard.plugin.reports import register_polluters, register_test_reporter
from leakguard.plugin.stash import (
    BASELINE,
    FIXTURE_ENDS_NAME,
    PAYLOADS,
    PHASES_NAME,
    PLAN,
    REGISTRY,
    RUN,
    RUN_OPTIONS,
    SUMMARY,
    globally_on,
    internal_problem,
    record_problem,
)
from leakguard.trackers.processes.interrupts import GUARD, INTERRUPTS

try:  # pytest's scope object; the public ``FixtureDef.scope`` string decides where it differs
    from _pytest.scope import Scope

    _FUNCTION_SCOPE: object = Scope.Function
except ImportError:  # pragma: no cover - a pytest without it
    _FUNCTION_SCOPE = object()

if TYPE_CHECKING:
    from leakguard.core.conclude import Finding
    from leakguard.plugin.handle import LeakguardHandle


def start_run(config: pytest.Config) -> Run:
    """The run's state and engine, made once: at configure when every test is checked (so
    origins are recorded from the first test), else when the first checked test is known."""
    run = config.stash.get(RUN, None)
    if run is not None:
        return run
    summary = config.stash[SUMMARY]
    run_options = config.stash[RUN_OPTIONS]

    def on_problem(problem: InternalProblem) -> None:
        record_problem(config, problem.to_dict())

    engine = Engine(config.stash[REGISTRY], on_problem)
    # Where the walk from a library's frame up to the user's code gives up: pytest's runner.
    origin.set_test_runner([os.path.dirname(_pytest.__file__)])
    run = Run(engine, root=str(config.rootpath), baseline=config.stash.get(BASELINE, None))

    def reproduce(nodeid: str, earlier: list[str]) -> str:
        from leakguard.plugin.reproduce import reproduce_line  # on the leak path: loaded

        return reproduce_line(config, nodeid, earlier)

    run.reproduce = reproduce
    if config.getoption("leakguard_stats"):
        summary.stats = Stats()
        run.time_with(summary.stats)
    config.stash[RUN] = run
    if not hasattr(config, "workerinput") and getattr(config.option, "dist", "no") != "no":
        register_test_reporter(config)  # an xdist controller: it gathers the workers' reports
    # pytest-html's ``--html``: its report then carries the timeline (`timeline.configure`).
    html_report = config.getoption("htmlpath", None)
    if run_options.report_path or run_options.html_path or html_report:
        from leakguard.plugin import timeline  # only where a report shows it

        timeline.configure(config, run, summary, run_options.report_path, run_options.html_path)
        register_test_reporter(config)  # it hands every report to the timeline
    GUARD.attach(run, summary.notes)  # Ctrl-C / SIGTERM during a test still stop its processes
    if globally_on(config):
        # Install now so origins (where a thread was started) are recorded from the first test.
        run.engine.activate(run_options.settings.trackers)
    return run


def stop_run(config: pytest.Config) -> None:
    run = config.stash.get(RUN, None)
    if run is None:
        return
    GUARD.detach(run)
    run.engine.close()
    if run.timeline is not None:
        from leakguard.plugin import timeline

        for name in timeline.NAMES:
            plugin = config.pluginmanager.get_plugin(name)
            if plugin is not None:
                config.pluginmanager.unregister(plugin)


def register_test_hooks(config: pytest.Config) -> None:
    """The hooks around each checked test. What reports a leak (`TestReporter`) joins with the
    first leak or problem to carry (`_carry`, `record_problem`)."""
    if config.pluginmanager.get_plugin(PHASES_NAME) is None:
        config.pluginmanager.register(CheckedTestHooks(config.stash[RUN]), PHASES_NAME)


def _register(config: pytest.Config, plugin: Callable[[], object], name: str) -> None:
    if config.pluginmanager.get_plugin(name) is None:
        config.pluginmanager.register(plugin(), name)


def handle_for(request: pytest.FixtureRequest) -> LeakguardHandle:
    """The ``leakguard`` fixture's value: checking turned on for this test."""
    from leakguard.plugin.handle import LeakguardHandle  # only for tests that ask for it

    config = request.config
    item = request.node
    hooks = config.pluginmanager.get_plugin(PHASES_NAME)
    state = hooks.state_of(item) if isinstance(hooks, CheckedTestHooks) else None
    if state is None and isinstance(item, pytest.Item):
        state = _check_from_now(item)
    return LeakguardHandle(config.stash[RUN], state, config.stash[REGISTRY].names())


class FixtureEnds:
    """The end of a longer-lived fixture that owns something: its resources are checked when
    the test in whose teardown it ended is (`Run.fixture_finished`).

    Registered when the first such fixture is set up: until then no fixture's teardown, and
    tests have many, pays for the hook.
    """

    def pytest_fixture_post_finalizer(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> None:
        run = request.config.stash.get(RUN, None)
        if run is not None and run.fixtures:
            run.fixture_finished(id(fixturedef))


class CheckedTestHooks:
    """The hooks around each checked test: snapshot at setup, attribute higher-scoped fixtures,
    check at the end of teardown.

    Holds the run it serves (one per pytest run, made before these hooks are registered): a
    ``config.stash`` lookup is a Python-level call, and these run around every test.
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        # The checked test between its setup and its teardown, and its state: here rather than
        # in the item's stash, whose every access is a Python-level call (six a test).
        self.item: pytest.Item | None = None
        self.state: TestState | None = None

    def state_of(self, item: pytest.Item) -> TestState | None:
        """``item``'s state, if it is the checked test now running."""
        return self.state if self.item is item else None

    def started(self, item: pytest.Item, state: TestState) -> None:
        self.item, self.state = item, state

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        # A plain hook, not a wrapper: it only looks before setup (≈ 4,000 instructions a test
        # less); pytest's own setup, which makes the test's fixtures, runs after it.
        plan = item.stash.get(PLAN, None)
        if plan is not None:
            run = self.run
            try:
                state = run.begin_test(item.nodeid, plan.settings)
                self.item, self.state = item, state
                if run.timeline is not None:  # timeline (issue 15)
                    from leakguard.plugin import timeline

                    timeline.begun(run, state)
            except Exception as exc:  # a fault in leakguard must never become the user's error
                internal_problem(item, exc)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, Any, Any]:
        # Resources a longer-lived fixture creates belong to it, not to the test that first asked.
        # Runs for every fixture of every test: pytest's own scope object first (the public
        # ``scope`` reads an enum's value through a Python-level property, ≈ 1,500 instructions).
        if getattr(fixturedef, "_scope", None) is _FUNCTION_SCOPE or fixturedef.scope == "function":
            return (yield)
        run = self.run
        state = run.current
        if state is None:
            return (yield)
        with LINEAGE.fixture_setup():
            try:
                before = run.engine.snapshot(
                    state.settings.trackers, "before", state.settings.grace
                )
            except Exception as exc:  # a fault in leakguard must never become the user's error
                internal_problem(request.node, exc, "fixture setup")
                return (yield)
            try:
                return (yield)
            finally:
                owner = fixture_owner(fixturedef.argname, fixturedef.scope, fixturedef.baseid)
                try:
                    run.fixture_set_up(id(fixturedef), owner, before, state.settings)
                    if run.fixtures:
                        _register(request.config, FixtureEnds, FIXTURE_ENDS_NAME)
                except Exception as exc:
                    internal_problem(request.node, exc, "fixture setup")

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item: pytest.Item) -> Generator[None, None, None]:
        # Only the arguments it reads (not ``nextitem``): pluggy builds each call's list.
        state = self.state
        if state is None or self.item is not item:
            return (yield)
        # Dropped now: the snapshot references the test's objects, which must be free to go.
        self.item = self.state = None
        error: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            error = exc
        if isinstance(error, INTERRUPTS):
            # Ctrl-C (or SIGTERM) in the user's teardown: no grace wait, only the stop.
            GUARD.stop(state, GUARD.cause_of(error))
            GUARD.test_ended()
            raise error
        try:
            findings = _end_test(item, self.run, state)
        except INTERRUPTS as exc:  # during the grace wait: it ends at once
            GUARD.stop(state, GUARD.cause_of(exc))
            raise
        finally:
            GUARD.test_ended()
        if error is not None:
            raise error  # the user's own teardown failure is the story; the summary keeps the leaks
        if not findings:
            return None
        failures = [f.message for f in findings if f.action == "fail"]
        for finding in findings:
            if finding.action == "warn":
                warnings.warn(LeakWarning(finding.message), stacklevel=1)
        if failures:
            pytest.fail("\n\n".join(failures), pytrace=False)


def _end_test(item: pytest.Item, run: Run, state: TestState) -> list[Finding]:
    try:
        findings = run.end_test(state)
    except Exception as exc:  # a fault in leakguard must never hide the user's result
        internal_problem(item, exc)
        findings = []
    if run.late:
        # An earlier test's, seen after this one: to the summary on this test's report, but
        # neither this test's failure nor its JUnit properties.
        late, run.late = run.late, []
        _carry(item, [f.payload() for f in late])
    if run.timeline is not None:  # timeline (issue 15)
        from leakguard.plugin import timeline

        try:
            timeline.ended(run, state, findings)
        except Exception as exc:
            internal_problem(item, exc, "timeline")
    if findings:
        _carry(item, [f.payload() for f in findings])
        for finding in findings:
            # JUnit XML: one <property name="leakguard"> per leak, for dashboards to count.
            for leak in finding.leaks:
                item.user_properties.append(
                    ("leakguard", f"[{finding.action}] {finding.kind}: {leak.description}")
                )
    return findings


def _carry(item: pytest.Item, payloads: list[dict[str, Any]]) -> None:
    """Payloads for the test's teardown report (`TestReporter`), which carries them to the
    summary and, under xdist, to the controller; and from now on failing tests may have
    polluters to name (`register_polluters`)."""
    item.config.stash.setdefault(PAYLOADS, {}).setdefault(item.nodeid, []).extend(payloads)
    register_test_reporter(item.config)
    register_polluters(item.config)


def _check_from_now(item: pytest.Item) -> TestState:
    """The fixture was asked for late (``request.getfixturevalue``): check from this point on,
    rather than hand out a handle whose ``check()`` and ``ignore()`` do nothing."""
    config = item.config
    known = config.stash[REGISTRY].names()
    plan = markers.plan_for(item, config.stash[RUN_OPTIONS].settings, True, known)
    if plan is None:
        raise pytest.UsageError(
            f"{item.nodeid}: the leakguard fixture was requested, but the test is marked "
            "no_resource_tracking: nothing would be checked"
        )
    start_run(config)
    register_test_hooks(config)
    state = config.stash[RUN].begin_test(item.nodeid, plan.settings)
    hooks = config.pluginmanager.get_plugin(PHASES_NAME)
    assert isinstance(hooks, CheckedTestHooks)  # registered just now
    hooks.started(item, state)
    if config.stash[RUN].timeline is not None:  # timeline (issue 15)
        from leakguard.plugin import timeline

        timeline.begun(config.stash[RUN], state)
    return state

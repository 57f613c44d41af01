"""Every pytest hook of leakguard, and nothing else: the phase boundaries call into `Run`.

Snapshot at the start of setup (before any fixture of the test); check at the end of teardown
(after every finalizer); raise there so pytest prints ``ERROR at teardown of …``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Generator
from typing import Any

import pytest

from leakguard.core import active
from leakguard.core.conclude import Finding
from leakguard.core.engine import Engine
from leakguard.core.faults import InternalProblem
from leakguard.core.lineage import LINEAGE
from leakguard.core.registry import TrackerRegistry
from leakguard.core.runstate import Run, TestState, fixture_owner
from leakguard.core.settings import SettingsError
from leakguard.core.stats import Stats
from leakguard.errors import LeakWarning
from leakguard.plugin import markers, options, timeline
from leakguard.plugin.handle import LeakguardHandle
from leakguard.plugin.reporter import RunReporter, TestReporter
from leakguard.plugin.reproduce import reproduce_line
from leakguard.plugin.stash import (
    ACTIVE,
    AUTOUSE,
    PAYLOADS,
    PHASES_NAME,
    PLAN,
    REGISTRY,
    REPORTER_NAME,
    RUN,
    RUN_OPTIONS,
    STATE,
    SUMMARY,
    TEST_REPORTER_NAME,
    internal_problem,
    record_problem,
)
from leakguard.plugin.summary import Summary
from leakguard.trackers.processes.interrupts import GUARD, INTERRUPTS

# The server helpers' two fixtures ride along; everything else of theirs joins on first use.
pytest_plugins = ["leakguard.servers.pytest_plugin"]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from leakguard.plugin import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for help_text in markers.MARKER_HELP.values():
        config.addinivalue_line("markers", help_text)
    registry = TrackerRegistry.default()
    config.hook.pytest_leakguard_register_trackers.call_historic(kwargs={"registry": registry})
    run_options = options.read_run_options(config, registry.names())
    summary = Summary(str(config.rootpath))

    def on_problem(problem: InternalProblem) -> None:
        record_problem(config, problem.to_dict())

    baseline = None
    if run_options.baseline_path:
        # Imported only by a run with a baseline, and here at start-up: what runs on the leak
        # path and at the end must never import (a test may have used up every descriptor,
        # and an import opens a file).
        from leakguard.core.baseline import Baseline, BaselineError
    if run_options.baseline_path and not run_options.update_baseline:
        try:
            baseline = Baseline.load(run_options.baseline_path, "leakguard_baseline")
        except BaselineError as exc:
            raise pytest.UsageError(str(exc)) from None
    run = Run(Engine(registry, on_problem), root=str(config.rootpath), baseline=baseline)
    run.reproduce = functools.partial(reproduce_line, config)
    if config.getoption("leakguard_stats"):
        run.engine.stats = summary.stats = Stats()
    config.stash[ACTIVE] = active.ActiveRun(registry, on_problem)
    active.push(config.stash[ACTIVE])
    config.stash[REGISTRY] = registry
    config.stash[RUN_OPTIONS] = run_options
    config.stash[SUMMARY] = summary
    config.stash[RUN] = run
    config.pluginmanager.register(RunReporter(config), REPORTER_NAME)
    if not hasattr(config, "workerinput") and getattr(config.option, "dist", "no") != "no":
        _register_test_hooks(config)  # an xdist controller: it gathers the workers' reports
    timeline.configure(config, run, summary, run_options.report_path, run_options.html_path)
    GUARD.attach(run, summary.notes)  # Ctrl-C / SIGTERM during a test still stop its processes
    if _globally_on(config):
        # Install now so origins (where a thread was started) are recorded from the first test.
        run.engine.activate(run_options.settings.trackers)


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN, None)
    if run is not None:
        GUARD.detach(run)
        run.engine.close()
    if ACTIVE in config.stash:
        active.pop(config.stash[ACTIVE])
    for name in (REPORTER_NAME, PHASES_NAME, TEST_REPORTER_NAME, *timeline.NAMES):
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)


def _globally_on(config: pytest.Config) -> bool:
    return config.stash[RUN_OPTIONS].enabled or config.stash.get(AUTOUSE, False)


def pytest_report_header(config: pytest.Config) -> str:
    s = config.stash[RUN_OPTIONS].settings
    if not _globally_on(config):
        return "leakguard: off (marked tests and tests using the leakguard fixture are checked)"
    return (
        f"leakguard: on; trackers: {' '.join(s.trackers) or 'none'}; action: {s.action}; "
        f"grace: {s.grace:g}s; cleanup: {'on' if s.cleanup else 'off'}"
    )


# --- collection: resolve each test's plan; a bad marker is a collection error ------------------
@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    config = collector.config
    if report.outcome != "passed" or RUN not in config.stash:
        return report
    errors = []
    base = config.stash[RUN_OPTIONS].settings
    on = _globally_on(config)
    known = config.stash[REGISTRY].names()
    for node in report.result:
        if isinstance(node, pytest.Item):
            try:
                node.stash[PLAN] = markers.plan_for(node, base, on, known)
            except SettingsError as exc:
                errors.append(f"{node.nodeid}: {exc}")
    if errors:
        report.outcome = "failed"
        report.longrepr = "leakguard: bad marker arguments\n" + "\n".join(errors)
        report.result = []
    return report


# --- the test's phases ---------------------------------------------------------------------------
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The per-test hooks join only when some test is checked: installed and off costs nothing.
    if any(item.stash.get(PLAN, None) is not None for item in items):
        _register_test_hooks(config, phases=True)


def _register_test_hooks(config: pytest.Config, phases: bool = False) -> None:
    plugins = config.pluginmanager
    if phases and plugins.get_plugin(PHASES_NAME) is None:
        plugins.register(CheckedTestHooks(), PHASES_NAME)
    if plugins.get_plugin(TEST_REPORTER_NAME) is None:
        plugins.register(TestReporter(config), TEST_REPORTER_NAME)


class CheckedTestHooks:
    """The hooks around each checked test: snapshot at setup, attribute higher-scoped fixtures,
    check at the end of teardown."""

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Generator[None, None, None]:
        plan = item.stash.get(PLAN, None)
        if plan is not None:
            try:
                item.stash[STATE] = item.config.stash[RUN].begin_test(item.nodeid, plan.settings)
                if item.config.stash[RUN].timeline is not None:  # timeline (issue 15)
                    timeline.begun(item.config.stash[RUN], item.stash[STATE])
            except Exception as exc:  # a fault in leakguard must never become the user's error
                internal_problem(item, exc)
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, Any, Any]:
        # Resources a longer-lived fixture creates belong to it, not to the test that first asked.
        if fixturedef.scope == "function":
            return (yield)
        run = request.config.stash.get(RUN, None)
        state = run.current if run is not None else None
        if run is None or state is None:
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
                except Exception as exc:
                    internal_problem(request.node, exc, "fixture setup")

    def pytest_fixture_post_finalizer(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> None:
        run = request.config.stash.get(RUN, None)
        if run is not None and run.fixtures:
            run.fixture_finished(id(fixturedef))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, None, None]:
        state = item.stash.get(STATE, None)
        if state is None:
            return (yield)
        # Dropped now: the snapshot references the test's objects, which must be free to go.
        del item.stash[STATE]
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
            findings = _end_test(item, state)
        except INTERRUPTS as exc:  # during the grace wait: it ends at once
            GUARD.stop(state, GUARD.cause_of(exc))
            raise
        finally:
            GUARD.test_ended()
        if error is not None:
            raise error  # the user's own teardown failure is the story; the summary keeps the leaks
        failures = [f.message for f in findings if f.action == "fail"]
        for finding in findings:
            if finding.action == "warn":
                warnings.warn(LeakWarning(finding.message), stacklevel=1)
        if failures:
            pytest.fail("\n\n".join(failures), pytrace=False)


def _end_test(item: pytest.Item, state: TestState) -> list[Finding]:
    run = item.config.stash[RUN]
    try:
        findings = run.end_test(state)
    except Exception as exc:  # a fault in leakguard must never hide the user's result
        internal_problem(item, exc)
        findings = []
    if run.late:
        # An earlier test's, seen after this one: to the summary on this test's report, but
        # neither this test's failure nor its JUnit properties.
        late, run.late = run.late, []
        item.stash.setdefault(PAYLOADS, []).extend(f.payload() for f in late)
    if run.timeline is not None:  # timeline (issue 15)
        try:
            timeline.ended(run, state, findings)
        except Exception as exc:
            internal_problem(item, exc, "timeline")
    if findings:
        # Carried on the teardown report (not kept in this process): under xdist the report
        # is what reaches the controller's summary and JSON.
        item.stash.setdefault(PAYLOADS, []).extend(f.payload() for f in findings)
        for finding in findings:
            # JUnit XML: one <property name="leakguard"> per leak, for dashboards to count.
            for leak in finding.leaks:
                item.user_properties.append(
                    ("leakguard", f"[{finding.action}] {finding.kind}: {leak.description}")
                )
    return findings


@pytest.fixture
def leakguard(request: pytest.FixtureRequest) -> LeakguardHandle:
    """Turns checking on for this test: ``.ignore(obj)``, ``.snapshot()``, ``.check()``."""
    config = request.config
    item = request.node
    state = item.stash.get(STATE, None)
    if state is None and isinstance(item, pytest.Item):
        state = _check_from_now(item)
    return LeakguardHandle(config.stash[RUN], state, config.stash[REGISTRY].names())


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
    _register_test_hooks(config, phases=True)
    state = config.stash[RUN].begin_test(item.nodeid, plan.settings)
    item.stash[STATE] = state
    if config.stash[RUN].timeline is not None:  # timeline (issue 15)
        timeline.begun(config.stash[RUN], state)
    return state

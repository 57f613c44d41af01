"""pytest's entry point for leakguard: the options, the markers, the run's ends.

Every pytest run in an environment where leakguard is installed loads this module, checked or
not, so it imports only what reads options and markers. The run's machinery (engine, trackers,
the hooks around each test: `leakguard.plugin.checking`) is imported once some test is checked:
at configure when every test is, else when collection finds a checked test or a test asks for
the ``leakguard`` fixture.
"""

from __future__ import annotations

import importlib
from collections.abc import Generator
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

from leakguard.plugin import ownimports

# First, so that the imports below and the run's lazy ones skip pytest's assertion rewriter.
_OWN_IMPORTS = ownimports.install()

from leakguard import forget_unloaded_modules  # noqa: E402
from leakguard.core import active  # noqa: E402
from leakguard.core.faults import InternalProblem  # noqa: E402
from leakguard.core.registry import TrackerRegistry  # noqa: E402
from leakguard.core.settings import SettingsError  # noqa: E402
from leakguard.plugin import markers, options  # noqa: E402
from leakguard.plugin.reporter import RunReporter  # noqa: E402
from leakguard.plugin.stash import (  # noqa: E402
    ACTIVE,
    BASELINE,
    PLAN,
    PLUGIN_NAMES,
    REGISTRY,
    REPORTER_NAME,
    RUN,
    RUN_OPTIONS,
    SUMMARY,
    globally_on,
    record_problem,
)
from leakguard.plugin.summary import Summary  # noqa: E402

if TYPE_CHECKING:
    from leakguard.plugin.handle import LeakguardHandle

SERVERS_PLUGIN = "leakguard.servers.pytest_plugin"
"""The server helpers' two fixtures, which ride along; everything else of theirs joins on first
use. Registered here rather than named in ``pytest_plugins``: pytest looks a name there up
among every installed distribution's entry points first, a second pass over all of them on
every run (≈ 3 M instructions of start-up)."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from leakguard.plugin import hookspecs

    pluginmanager.add_hookspecs(hookspecs)
    if not pluginmanager.is_blocked(SERVERS_PLUGIN) and not pluginmanager.has_plugin(
        SERVERS_PLUGIN
    ):
        from leakguard.servers import pytest_plugin

        pluginmanager.register(pytest_plugin, SERVERS_PLUGIN)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    forget_unloaded_modules()  # pytester's in-process runs: see there
    for help_text in markers.MARKER_HELP.values():
        config.addinivalue_line("markers", help_text)
    registry = TrackerRegistry.default()
    config.hook.pytest_leakguard_register_trackers.call_historic(kwargs={"registry": registry})
    run_options = options.read_run_options(config, registry.names())
    if run_options.baseline_path:
        # Imported here, at start-up, to read or later write the file: what runs on the leak
        # path and at the end must never import (a test may have used up every descriptor, and
        # an import opens a file). A malformed file is a usage error.
        from leakguard.core.baseline import Baseline, BaselineError
    if run_options.baseline_path and not run_options.update_baseline:
        try:
            config.stash[BASELINE] = Baseline.load(run_options.baseline_path, "leakguard_baseline")
        except BaselineError as exc:
            raise pytest.UsageError(str(exc)) from None

    def on_problem(problem: InternalProblem) -> None:
        record_problem(config, problem.to_dict())

    config.stash[ACTIVE] = active.ActiveRun(registry, on_problem)
    active.push(config.stash[ACTIVE])
    config.stash[REGISTRY] = registry
    config.stash[RUN_OPTIONS] = run_options
    config.stash[SUMMARY] = Summary(str(config.rootpath))
    config.pluginmanager.register(RunReporter(config), REPORTER_NAME)
    controller = not hasattr(config, "workerinput") and getattr(config.option, "dist", "no") != "no"
    if globally_on(config) or controller:
        _checking().start_run(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    if RUN in config.stash:
        _checking().stop_run(config)
    if ACTIVE in config.stash:
        active.pop(config.stash[ACTIVE])
    for name in PLUGIN_NAMES:
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            config.pluginmanager.unregister(plugin)
    ownimports.uninstall(_OWN_IMPORTS)


def pytest_report_header(config: pytest.Config) -> str:
    s = config.stash[RUN_OPTIONS].settings
    if not globally_on(config):
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
    if report.outcome != "passed" or RUN_OPTIONS not in config.stash:
        return report
    errors = []
    base = config.stash[RUN_OPTIONS].settings
    on = globally_on(config)
    known = config.stash[REGISTRY].names()
    inherited: list[pytest.Mark] | None = None
    for node in report.result:
        if isinstance(node, pytest.Item):
            try:
                if node.parent is collector:  # the usual case: the marks above, walked once
                    if inherited is None:
                        inherited = markers.inherited_marks(collector)
                    plan = markers.plan_for(node, base, on, known, inherited)
                else:
                    plan = markers.plan_for(node, base, on, known)
                if plan is not None:  # no plan, not checked: read as ``stash.get(PLAN, None)``
                    node.stash[PLAN] = plan
            except SettingsError as exc:
                errors.append(f"{node.nodeid}: {exc}")
    if errors:
        report.outcome = "failed"
        report.longrepr = "leakguard: bad marker arguments\n" + "\n".join(errors)
        report.result = []
    return report


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The run's machinery and the per-test hooks join only when some test is checked:
    # installed and off costs nothing.
    if any(item.stash.get(PLAN, None) is not None for item in items):
        checking = _checking()
        checking.start_run(config)
        checking.register_test_hooks(config)


@pytest.fixture
def leakguard(request: pytest.FixtureRequest) -> LeakguardHandle:
    """Turns checking on for this test: ``.ignore(obj)``, ``.snapshot()``, ``.check()``."""
    handle: LeakguardHandle = _checking().handle_for(request)
    return handle


def _checking() -> ModuleType:
    """The run's machinery (`leakguard.plugin.checking`), imported now if need be."""
    return importlib.import_module("leakguard.plugin.checking")

"""The ini options and CLI flags, and the run-level settings they resolve to (ini < CLI)."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from leakguard.core.jsonfile import unwritable_reason
from leakguard.core.settings import (
    DEFAULT_TRACKERS,
    Settings,
    SettingsError,
    parse_action,
    parse_bool,
    parse_grace,
    parse_ignore,
    parse_trackers,
)

# One help text per setting, shared by the ini option and its flag.
HELP = {
    "leakguard": "check every test for leaked resources (default: false)",
    "trackers": f"trackers to run, space-separated (default: {' '.join(DEFAULT_TRACKERS)})",
    "action": "on a leak: fail (error at teardown), warn (LeakWarning) or report (summary only)",
    "cleanup": "clean up leaks: cancel tasks, stop processes, close descriptors (default: true)",
    "grace": "seconds a resource may take to finish after the test before it counts (default: 1.0)",
    "ignore": "'TRACKER: REGEX' lines; a resource whose description matches is not a leak",
    "traceback": "record and show where each resource was created (default: true)",
    "report": "write a JSON report of every leak to this path",
    # timeline (issue 15)
    "html": "write a standalone HTML report (resource counts test by test, leaks) to this path",
    "baseline": "a file of known leaks: reported, but they do not fail",
    "garbage_action": "on a resource freed only by the garbage collector (an unclosed object "
    "in a reference cycle): fail, warn or report (default: report)",
    "native_action": "on a native descriptor (made in C, no Python owner; never closed): "
    "fail, warn or report (default: report)",
}


class RunOptions:
    """What the ini file and the command line say for the whole run.

    A plain class: a dataclass costs 0.25-0.5 ms to define (Python 3.10-3.12), at start-up.
    """

    __slots__ = (
        "baseline_path",
        "enabled",
        "html_path",
        "report_path",
        "settings",
        "update_baseline"
    )  # fmt: skip

    def __init__(
        self,
        enabled: bool,
        settings: Settings,
        report_path: str | None,
        baseline_path: str | None = None,
        update_baseline: bool = False,
        html_path: str | None = None,  # timeline (issue 15)
    ) -> None:
        self.enabled = enabled
        self.settings = settings
        self.report_path = report_path
        self.baseline_path = baseline_path
        self.update_baseline = update_baseline
        self.html_path = html_path


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("leakguard", "leakguard: fail tests that leak resources")
    group.addoption(
        "--leakguard",
        action="store_true",
        dest="leakguard_enabled",
        default=None,
        help=HELP["leakguard"],
    )
    group.addoption(
        "--no-leakguard",
        action="store_false",
        dest="leakguard_enabled",
        help="turn checking off (markers and the fixture still turn it on per test)",
    )
    group.addoption("--leakguard-trackers", metavar="NAMES", default=None, help=HELP["trackers"])
    group.addoption("--leakguard-action", metavar="ACTION", default=None, help=HELP["action"])
    for name in ("native_action", "garbage_action"):
        flag = "--leakguard-" + name.replace("_", "-")
        group.addoption(flag, metavar="ACTION", default=None, help=HELP[name])
    group.addoption("--leakguard-grace", metavar="SECONDS", default=None, help=HELP["grace"])
    group.addoption(
        "--leakguard-ignore",
        metavar="'TRACKER: REGEX'",
        action="append",
        default=None,
        help=HELP["ignore"] + " (repeatable; adds to the ini lines)",
    )
    group.addoption(
        "--leakguard-cleanup",
        action="store_true",
        dest="leakguard_cleanup",
        default=None,
        help=HELP["cleanup"],
    )
    group.addoption(
        "--leakguard-no-cleanup",
        action="store_false",
        dest="leakguard_cleanup",
        help="report leaks but leave them in place",
    )
    group.addoption(
        "--leakguard-traceback",
        action="store_true",
        dest="leakguard_traceback",
        default=None,
        help=HELP["traceback"],
    )
    group.addoption(
        "--leakguard-no-traceback",
        action="store_false",
        dest="leakguard_traceback",
        help="do not show where resources were created",
    )
    group.addoption("--leakguard-report", metavar="PATH", default=None, help=HELP["report"])
    group.addoption("--leakguard-baseline", metavar="PATH", default=None, help=HELP["baseline"])
    group.addoption("--leakguard-html", metavar="PATH", default=None, help=HELP["html"])  # timeline
    group.addoption(
        "--leakguard-update-baseline",
        action="store_true",
        default=False,
        help="write every leak of this run to the baseline file (leakguard_baseline)",
    )

    group.addoption(
        "--leakguard-stats",
        action="store_true",
        default=False,
        help="print (and write to the JSON report) what leakguard itself cost in this run",
    )
    parser.addini("leakguard", HELP["leakguard"], type="string", default="false")
    parser.addini(
        "leakguard_trackers", HELP["trackers"], type="string", default=" ".join(DEFAULT_TRACKERS)
    )
    parser.addini("leakguard_action", HELP["action"], type="string", default="fail")
    for name in ("native_action", "garbage_action"):
        parser.addini(f"leakguard_{name}", HELP[name], type="string", default="report")
    parser.addini("leakguard_cleanup", HELP["cleanup"], type="string", default="true")
    parser.addini("leakguard_grace", HELP["grace"], type="string", default="1.0")
    parser.addini("leakguard_ignore", HELP["ignore"], type="linelist", default=[])
    parser.addini("leakguard_traceback", HELP["traceback"], type="string", default="true")
    parser.addini("leakguard_report", HELP["report"], type="string", default="")
    parser.addini("leakguard_baseline", HELP["baseline"], type="string", default="")
    parser.addini("leakguard_html", HELP["html"], type="string", default="")  # timeline


def _pick(config: pytest.Config, flag: str, ini: str) -> tuple[object, str]:
    """The CLI value when given, else the ini value; with a name for error messages."""
    value = config.getoption(flag)
    if value is not None:
        return value, "--" + flag.replace("_", "-")
    return config.getini(ini), f"ini option {ini}"


def read_run_options(config: pytest.Config, known: Collection[str]) -> RunOptions:
    """Resolve defaults < ini < CLI; a bad value raises `pytest.UsageError` naming its source."""
    try:
        enabled_value, enabled_source = _pick(config, "leakguard_enabled", "leakguard")
        trackers_value, trackers_source = _pick(config, "leakguard_trackers", "leakguard_trackers")
        action_value, action_source = _pick(config, "leakguard_action", "leakguard_action")
        native_value, native_source = _pick(
            config, "leakguard_native_action", "leakguard_native_action"
        )
        garbage_value, garbage_source = _pick(
            config, "leakguard_garbage_action", "leakguard_garbage_action"
        )
        cleanup_value, cleanup_source = _pick(config, "leakguard_cleanup", "leakguard_cleanup")
        grace_value, grace_source = _pick(config, "leakguard_grace", "leakguard_grace")
        trace_value, trace_source = _pick(config, "leakguard_traceback", "leakguard_traceback")
        # Ignore lines accumulate: the ini lists the suite's known noise, the CLI adds to it.
        ignore = parse_ignore(
            config.getini("leakguard_ignore"), known, "ini option leakguard_ignore"
        )
        ignore += parse_ignore(
            config.getoption("leakguard_ignore") or [], known, "--leakguard-ignore"
        )
        settings = Settings(
            trackers=parse_trackers(str(trackers_value), known, trackers_source),
            action=parse_action(action_value, action_source),
            cleanup=parse_bool(cleanup_value, cleanup_source),
            grace=parse_grace(grace_value, grace_source),
            ignore=ignore,
            traceback=parse_bool(trace_value, trace_source),
            native_action=parse_action(native_value, native_source),
            garbage_action=parse_action(garbage_value, garbage_source),
        )
        enabled = parse_bool(enabled_value, enabled_source)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    report = config.getoption("leakguard_report") or str(config.getini("leakguard_report")).strip()
    baseline = (
        config.getoption("leakguard_baseline") or str(config.getini("leakguard_baseline")).strip()
    )
    update = bool(config.getoption("leakguard_update_baseline"))
    html = config.getoption("leakguard_html") or str(config.getini("leakguard_html")).strip()
    # Checked now, not at the end of the run: a traceback there would lose the result line.
    for path, name in (
        (report, "leakguard_report"),
        (html, "leakguard_html"),  # timeline (issue 15)
        (baseline if update else "", "leakguard_baseline"),
    ):
        why = unwritable_reason(path) if path else None
        if why:
            raise pytest.UsageError(f"{name}: cannot write {path!r}: {why}")
    if update and not baseline:
        raise pytest.UsageError(
            "--leakguard-update-baseline needs a file: "
            "set leakguard_baseline or --leakguard-baseline"
        )
    return RunOptions(enabled, settings, report or None, baseline or None, update, html or None)

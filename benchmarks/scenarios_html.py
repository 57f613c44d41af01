"""The timeline's clean-path cost with the HTML report off and on (issue 15): rows for
overhead.py; run alone (``python benchmarks/scenarios_html.py``), in-process figures.

Off, nothing is recorded; on, each checked test's counts come from the snapshots the check
already took, so the added cost is bookkeeping only.
"""

from __future__ import annotations

TRACKERS = ["threads", "tasks", "processes", "sockets", "ports", "fds"]

SCENARIOS = [
    {"name": "all six, HTML report off", "args": ["--leakguard"], "floor": TRACKERS},
    {
        "name": "all six + --leakguard-html",
        "args": ["--leakguard", "--leakguard-html", "report.html"],
        "floor": TRACKERS,
    },
    {
        "name": "all six + JSON report (timeline)",
        "args": ["--leakguard", "--leakguard-report", "report.json"],
        "floor": TRACKERS,
    },
]


def timeline_costs() -> None:
    """In-process figures, stable where whole runs are noisy: the engine's clean path per test
    without and with the timeline recording, and the time to render a 10,000-test report."""
    import random
    import time
    import timeit

    from leakguard.core.engine import Engine
    from leakguard.core.htmlreport import render
    from leakguard.core.registry import TrackerRegistry
    from leakguard.core.runstate import Run
    from leakguard.core.settings import Settings
    from leakguard.core.timeline import Timeline

    trackers = tuple(TRACKERS)

    def per_test(on: bool) -> float:
        run = Run(Engine(TrackerRegistry.default()))
        run.engine.activate(trackers)
        settings = Settings(trackers=trackers, grace=0.0)
        timeline = Timeline()
        if on:
            run.engine.observe = timeline.counter.observe

        def one() -> None:
            state = run.begin_test("bench::test", settings)
            if on:
                timeline.begun(state.nodeid, [])
            findings = run.end_test(state)
            if on:
                timeline.ended(state.nodeid, findings)
                for when in ("setup", "call", "teardown"):
                    timeline.outcome(state.nodeid, when, "passed", False)
                timeline.close(state.nodeid)
                if len(timeline.points) > 20_000:
                    timeline.points.clear()

        one()
        best = min(timeit.repeat(one, number=5000, repeat=9)) / 5000
        run.engine.close()
        return best * 1e6

    # Alternate off and on, keep the best of each: other load only ever adds.
    off = min(per_test(False) for _ in range(3))
    on = min(per_test(True) for _ in range(3))
    print(f"engine clean path, all six, per test: timeline off {off:.1f} µs, on {on:.1f} µs")
    print(f"the pytest glue's own bookkeeping per test (hooks' share): {glue_cost():.1f} µs")

    points = []
    rng = random.Random(15)
    for worker in ("gw0", "gw1"):
        for i in range(5000):
            leaks = []
            if rng.random() < 0.005:
                leaks = [{"owner": f"t::{i}", "tracker": "fds", "kind": "fd",
                          "description": "fd 17 file /x", "category": "leak", "action": "fail",
                          "origin": "t.py:1 in f", "residue": True}]  # fmt: skip
            counts = {"threads": 3, "tasks": 0, "processes": 0, "sockets": 1, "ports": 0,
                      "fds": 20 + i // 400}  # fmt: skip
            points.append({"worker": worker, "index": i, "test": f"tests/t.py::test_{i}",
                           "outcome": "passed", "error_at_teardown": bool(leaks),
                           "counts": counts, "leaks": leaks, "residue": [], "polluters": [],
                           "report": ""})  # fmt: skip
    start = time.perf_counter()
    page = render({"findings": [], "totals": {}, "problems": [], "timeline": points})
    took = (time.perf_counter() - start) * 1000
    print(f"HTML report of 10,000 tests (2 workers): {took:.0f} ms, {len(page) / 1e6:.2f} MB")


def glue_cost() -> float:
    """µs per test of the timeline's pytest glue (open, three reports, close), without pytest."""
    import timeit
    from types import SimpleNamespace

    import pytest

    from leakguard.core.timeline import Timeline
    from leakguard.plugin import timeline as timeline_plugin

    class Report:  # what the glue reads of a TestReport
        def __init__(self, when: str) -> None:
            self.nodeid, self.when, self.outcome = "bench::test", when, "passed"
            self.failed, self.sections = False, []

    config = SimpleNamespace(stash=pytest.Stash())
    run = SimpleNamespace(timeline=Timeline(), residue={}, engine=None)
    recording = timeline_plugin.Recording(run.timeline, None, None, True)  # type: ignore[arg-type]
    config.stash[timeline_plugin.RECORDING] = recording
    state = SimpleNamespace(nodeid="bench::test", before={})

    def one(glue: bool) -> None:
        reports = [Report(when) for when in ("setup", "call", "teardown")]
        if not glue:
            return
        timeline_plugin.begun(run, state)  # type: ignore[arg-type]
        for report in reports[:2]:
            timeline_plugin.logreport(config, run, report)  # type: ignore[arg-type]
        timeline_plugin.ended(run, state, [])  # type: ignore[arg-type]
        timeline_plugin.logreport(config, run, reports[2])  # type: ignore[arg-type]
        if len(recording.points) > 20_000:
            recording.points.clear()
            run.timeline.points.clear()

    def best(glue: bool) -> float:
        return min(timeit.repeat(lambda: one(glue), number=20_000, repeat=7)) / 20_000

    return (best(True) - best(False)) * 1e6


if __name__ == "__main__":
    timeline_costs()

"""Rows for overhead.py: the timeline's clean-path cost, with the HTML report off and on
(issue 15). Off, nothing is recorded; on, each checked test's counts come from the snapshots
the check already took, so the added cost is bookkeeping only."""

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

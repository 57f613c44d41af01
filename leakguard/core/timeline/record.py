"""One process's timeline: a point per checked test, in run order, built at its phase ends."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from leakguard.core.timeline.counts import SnapshotCounter
from leakguard.core.tracker import Conclusion

Point = dict[str, Any]
"""``{"worker", "index", "test", "outcome", "error_at_teardown", "counts", "leaks", "residue",
"polluters", "report"}``: JSON-safe, so xdist can carry it to the controller as it is."""


class FindingLike(Protocol):
    """What a timeline point needs of a concluded finding (`leakguard.core.conclude.Finding`)."""

    owner: str
    action: str
    kind: str
    message: str
    leaks: list[Conclusion]
    residue: list[Conclusion]


class Timeline:
    """The points of the tests this process ran; ``worker`` names an xdist worker (or ``""``).

    A point opens when the test's setup snapshot is taken (the residue present then), gets its
    counts, leaks and report text at the end-of-teardown check, its outcome from the test's
    reports, and is closed (numbered, appended) with its teardown report.
    """

    def __init__(self, worker: str = "", root: str | None = None) -> None:
        self.worker = worker
        self.root = root
        self.counter = SnapshotCounter()
        self.points: list[Point] = []
        self._open: dict[str, Point] = {}

    def begun(self, nodeid: str, residue: Iterable[tuple[str, Conclusion]]) -> None:
        self.counter.take()  # counts from an earlier mid-test check are not this test's end
        self._open[nodeid] = {
            "worker": self.worker,
            "index": -1,
            "test": nodeid,
            "outcome": "passed",
            "error_at_teardown": False,
            "counts": {},
            "leaks": [],
            "residue": [
                {"owner": owner, "tracker": r.tracker, "description": r.description}
                for owner, r in residue
            ],
            "polluters": [],
            "report": "",
        }

    def ended(self, nodeid: str, findings: Sequence[FindingLike]) -> None:
        """The end-of-teardown check is done: keep the counts the engine observed, and the
        leaks. With findings, the caller has fed the counter a snapshot taken after cleanup."""
        point = self._open.get(nodeid)
        counts = self.counter.take()
        if point is None:
            return
        point["counts"] = counts
        leaks = point["leaks"]
        for finding in findings:
            left = {id(r) for r in finding.residue}
            for r in finding.leaks:
                leaks.append(
                    {
                        "owner": finding.owner,
                        "tracker": r.tracker,
                        "kind": r.kind,
                        "description": r.description,
                        "category": r.category,
                        "action": finding.action,
                        "origin": r.origin.format(self.root) if r.origin else "",
                        "residue": id(r) in left,
                    }
                )
        point["report"] = "\n\n".join(f.message for f in findings if f.message)

    def outcome(self, nodeid: str, when: str, outcome: str, xfail: bool) -> None:
        """Record a phase's report: the point's outcome reads like pytest's summary words."""
        point = self._open.get(nodeid)
        if point is None:
            return
        if when == "teardown":
            point["error_at_teardown"] = outcome == "failed"
        elif when == "setup" and outcome == "failed":
            point["outcome"] = "error"
        elif outcome == "skipped":
            point["outcome"] = "xfailed" if xfail else "skipped"
        elif when == "call":
            point["outcome"] = "xpassed" if xfail and outcome == "passed" else outcome

    def polluted(self, nodeid: str, owners: Iterable[str]) -> None:
        """Earlier tests whose residue explains this test's failure (polluter naming)."""
        point = self._open.get(nodeid)
        if point is not None:
            for owner in owners:
                if owner not in point["polluters"]:
                    point["polluters"].append(owner)

    def current(self, nodeid: str) -> Point | None:
        return self._open.get(nodeid)

    def close(self, nodeid: str) -> Point | None:
        """The teardown report is out: number the point and append it."""
        point = self._open.pop(nodeid, None)
        if point is not None:
            point["index"] = len(self.points)
            self.points.append(point)
        return point

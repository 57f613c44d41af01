"""The run's leak summary: the terminal section and the JSON report, built from finding payloads
(which reach the xdist controller on the test reports, so workers' leaks are never lost)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from leakguard.jsonfile import write_json_atomic
from leakguard.report import MAX_ROWS_PER_KIND, plural


class Summary:
    def __init__(self) -> None:
        self.findings: list[dict[str, Any]] = []
        self.problems: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def add(self, payloads: list[dict[str, Any]]) -> None:
        self.findings.extend(payloads)

    def add_problem(self, problem: dict[str, Any]) -> None:
        """One internal problem (tracker, phase, during, error, message, traceback)."""
        if all(p["message"] != problem["message"] for p in self.problems):
            self.problems.append(problem)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.findings if f.get("kind", "leak") == kind]

    def counts(self) -> Counter[str]:
        return Counter(leak["tracker"] for f in self.of_kind("leak") for leak in f["leaks"])

    def write_terminal(self, line: Callable[[str], None]) -> None:
        """Write the section body: who leaked, counts by tracker, cleanup, residue, then what
        was made but is not a leak (library caches, native descriptors), then problems."""
        leaking = self.of_kind("leak")
        if leaking:
            counts = self.counts()
            total = sum(counts.values())
            by_tracker = ", ".join(f"{name}: {n}" for name, n in sorted(counts.items()))
            owners = plural(len(leaking), "owner")
            line(f"{owners} leaked {plural(total, 'resource')} ({by_tracker})")
            for finding in leaking:
                line(f"{finding['owner']} [{finding['action']}]")
                for leak in finding["leaks"][:MAX_ROWS_PER_KIND]:
                    outcome = f" -> {leak['cleanup']}" if leak.get("cleanup") else ""
                    line(f"    {leak['description']}{outcome}")
                _more(line, len(finding["leaks"]), "resource")
            residue = [(f["owner"], r) for f in leaking for r in f["residue"]]
            if residue:
                line(f"residue (cleanup could not remove {plural(len(residue), 'resource')}):")
                for owner, r in residue[:MAX_ROWS_PER_KIND]:
                    line(f"    {r['description']} (from {owner})")
                _more(line, len(residue), "resource")
            else:
                line("residue: none (cleanup removed everything it was allowed to)")
        self._write_kept(line)
        if self.problems:
            line(
                f"internal problems ({len(self.problems)}; leakguard's own faults, "
                "your results stand; tracebacks in the JSON report):"
            )
            for problem in self.problems:
                line(f"    {problem['message']}")
        for text in self.notes:
            line(text)

    def _write_kept(self, line: Callable[[str], None]) -> None:
        caches: dict[tuple[str, str], str] = {}
        for finding in self.of_kind("cache"):
            for leak in finding["leaks"]:
                caches.setdefault((leak["holder"], leak["description"]), finding["owner"])
        if caches:
            line(f"process-wide caches of libraries (not failed, not cleaned): {len(caches)}")
            for (holder, description), owner in caches.items():
                line(f"    {description} kept by {holder} (process-wide cache; "
                     f"first made during {owner})")  # fmt: skip
        natives = self.of_kind("native")
        if natives:
            count = sum(len(f["leaks"]) for f in natives)
            line(
                f"native descriptors (made in C, no Python owner; never closed): {count}"
            )
            for finding in natives:
                for leak in finding["leaks"]:
                    line(f"    {leak['description']} (during {finding['owner']}) "
                         f"[{finding['action']}]")  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "totals": dict(self.counts()),
            "findings": self.findings,
            "problems": self.problems,
        }

    def write_json(self, path: str) -> None:
        write_json_atomic(path, self.to_json())


def _more(line: Callable[[str], None], count: int, word: str) -> None:
    if count > MAX_ROWS_PER_KIND:
        more = count - MAX_ROWS_PER_KIND
        line(f"    … and {more} more {word}{'s' if more != 1 else ''} (all in the JSON report)")

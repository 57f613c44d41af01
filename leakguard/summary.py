"""The run's leak summary: the terminal section and the JSON report, built from finding payloads
(which reach the xdist controller on the test reports, so workers' leaks are never lost)."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

from leakguard.report import plural


class Summary:
    def __init__(self) -> None:
        self.findings: list[dict[str, Any]] = []
        self.problems: list[str] = []
        self.notes: list[str] = []

    def add(self, payloads: list[dict[str, Any]]) -> None:
        self.findings.extend(payloads)

    def add_problem(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)

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
                for leak in finding["leaks"]:
                    outcome = f" -> {leak['cleanup']}" if leak.get("cleanup") else ""
                    line(f"    {leak['description']}{outcome}")
            residue = [(f["owner"], r) for f in leaking for r in f["residue"]]
            if residue:
                line(f"residue (cleanup could not remove {plural(len(residue), 'resource')}):")
                for owner, r in residue:
                    line(f"    {r['description']} (from {owner})")
            else:
                line("residue: none (cleanup removed everything it was allowed to)")
        self._write_kept(line)
        for text in (*self.problems, *self.notes):
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
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f, indent=2)
            f.write("\n")
        os.replace(tmp, path)

"""The run's leak summary: the terminal section and the JSON report, built from finding payloads
(which reach the xdist controller on the test reports, so workers' leaks are never lost)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from leakguard.core.jsonfile import write_json_atomic
from leakguard.core.report import FREED_NOTE, MAX_ROWS_PER_KIND, plural
from leakguard.core.stats import Stats


class Summary:
    def __init__(self, root: str | None = None) -> None:
        self.root = root
        self.stats: Stats | None = None
        self.findings: list[dict[str, Any]] = []
        self.problems: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.timeline: list[dict[str, Any]] | None = None  # timeline (issue 15): its points

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
            self._write_sites(line, leaking, "several owners leaked from the same site:", 2)
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
        if self.stats is not None:
            self.stats.write(line)

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
        garbage = self.of_kind("garbage")
        if garbage:
            count = sum(len(f["leaks"]) for f in garbage)
            line(
                f"freed only by the garbage collector (close them explicitly): {count}, "
                "by creation site:"
            )
            self._write_sites(line, garbage, "", 1)
            said = _finalizer_notes(garbage)
            if said:
                # What the finalizers raised during leakguard's collection (an unclosed socket's
                # ResourceWarning under -W error): not raised into the next test, but not hidden.
                line("  what their finalizers said when the collector freed them:")
                for text in said[:MAX_ROWS_PER_KIND]:
                    line(f"    {text}")
                _more(line, len(said), "message")
        natives = self.of_kind("native")
        if natives:
            count = sum(len(f["leaks"]) for f in natives)
            line(f"native descriptors (made in C, no Python owner; never closed): {count}")
            for finding in natives:
                for leak in finding["leaks"]:
                    line(f"    {leak['description']} (during {finding['owner']}) "
                         f"[{finding['action']}]")  # fmt: skip

    def _write_sites(
        self,
        line: Callable[[str], None],
        findings: list[dict[str, Any]],
        heading: str,
        least: int,
    ) -> None:
        """One line per creation site shared by at least ``least`` owners: one root cause."""
        sites: dict[str, list[str]] = {}
        for finding in findings:
            for leak in finding["leaks"]:
                owners = sites.setdefault(_site(leak, self.root), [])
                if finding["owner"] not in owners:
                    owners.append(finding["owner"])
        shared = sorted(
            ((site, owners) for site, owners in sites.items() if len(owners) >= least),
            key=lambda item: -len(item[1]),
        )
        if shared and heading:
            line(heading)
        for site, owners in shared[:MAX_ROWS_PER_KIND]:
            examples = ", ".join(owners[:2]) + (", …" if len(owners) > 2 else "")
            line(f"    {plural(len(owners), 'test')}: {site} (e.g. {examples})")
        _more(line, len(shared), "site")

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "totals": dict(self.counts()),
            "findings": self.findings,
            "problems": self.problems,
            **({"stats": self.stats.to_dict()} if self.stats is not None else {}),
            **({"timeline": self.timeline} if self.timeline is not None else {}),  # issue 15
        }

    def write_json(self, path: str) -> None:
        write_json_atomic(path, self.to_json())


def _site(leak: dict[str, Any], root: str | None) -> str:
    origin = leak.get("origin")
    kind = str(leak["kind"])
    if kind == "fd":  # "fd 17 pipe" -> "fd pipe": the number differs from test to test
        kind = "fd " + str(leak["label"]).partition(" ")[2]
    if not origin:
        return kind
    from leakguard.core.origin import Origin  # only once there is a finding to print

    where = Origin.from_dict(origin).format(root)
    return f"{kind} {leak.get('verb', 'created')} at {where}"


def _finalizer_notes(findings: list[dict[str, Any]]) -> list[str]:
    said: dict[str, None] = {}
    for finding in findings:
        for leak in finding["leaks"]:
            for note in leak.get("notes", ()):
                if note.startswith(FREED_NOTE):
                    said.setdefault(f"{note[len(FREED_NOTE) :]} (during {finding['owner']})")
    return list(said)


def _more(line: Callable[[str], None], count: int, word: str) -> None:
    if count > MAX_ROWS_PER_KIND:
        more = count - MAX_ROWS_PER_KIND
        line(f"    … and {more} more {word}{'s' if more != 1 else ''} (all in the JSON report)")

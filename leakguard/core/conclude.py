"""The conclusion of a leak: whose each resource is, cleanup of the owner's own, the residue it
leaves, and the findings that the report, the summary and the JSON carry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from leakguard.core.report import format_leaks, plural
from leakguard.core.residue import ResidueEntry
from leakguard.core.settings import Settings
from leakguard.core.tracker import Conclusion

if TYPE_CHECKING:
    from leakguard.core.runstate import Run

GROWTH_LIMIT = 16
"""Alive resources one process-wide cache (or all native descriptors) may hold before each
further one a test adds is that test's leak: a cache is bounded, a leak is not."""


@dataclass
class Finding:
    """One owner's leaks, concluded: what the report says and what the summary and JSON keep.

    ``kind`` ``leak`` is the owner's own; ``kept`` holds what the owner made but does not own:
    library caches and native descriptors, named in the summary only (unless an action says).
    """

    owner: str
    action: str
    message: str
    leaks: list[Conclusion]
    residue: list[Conclusion]
    kind: str = "leak"

    def payload(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "action": self.action,
            "kind": self.kind,
            "message": self.message,
            "leaks": [r.to_dict() for r in self.leaks],
            "residue": [r.to_dict() for r in self.residue],
        }


def conclude(run: Run, owner: str, found: list[Conclusion], settings: Settings) -> list[Finding]:
    """Sort out whose each resource is, then for the owner's own: clean up, note residue,
    format (in that order). Caches and native descriptors are named, never touched."""
    run.engine.classify(found, run.root)
    for resource in found:
        resource.owner = owner
    _grown(run, found)
    leaks = [r for r in found if r.category == "leak"]
    findings: list[Finding] = []
    if leaks:
        findings.append(_conclude_leaks(run, owner, leaks, settings))
    natives = [r for r in found if r.category == "native"]
    if natives:
        message = format_leaks(owner, natives, cleanup_enabled=False, root=run.root)
        message = message.replace(" leaked ", " left native descriptors: ", 1)
        findings.append(Finding(owner, settings.native_action, message, natives, [], kind="native"))
    garbage = [r for r in found if r.category == "garbage"]
    if garbage:
        message = format_leaks(owner, garbage, cleanup_enabled=False, root=run.root)
        message = message.replace(
            " leaked ", " left to the garbage collector (close them explicitly): ", 1
        )
        findings.append(
            Finding(owner, settings.garbage_action, message, garbage, [], kind="garbage")
        )
    caches = [r for r in found if r.category == "cache"]
    if caches:
        findings.append(Finding(owner, "report", "", caches, [], kind="cache"))
    for resource in found:  # cleaned up and reported: from here on only remembered
        resource.release()
    return findings


def _conclude_leaks(run: Run, owner: str, leaks: list[Conclusion], settings: Settings) -> Finding:
    residue: list[Conclusion] = []
    if settings.cleanup:
        for leak in leaks:
            if leak.kept_by and leak.cleanup is None:
                # First rule: the app's module state is older than the test and shared by
                # the tests after it; shutting down what it keeps breaks them.
                leak.cleanup = (
                    f"left as is: kept by {leak.kept_by} (the application's module state; "
                    "closing it would break its next user)"
                )
        # A resource with an outcome already (a grown cache's) is not leakguard's to touch.
        pools = run.aftermath_now().pools_of(leaks)
        run.engine.cleanup([r for r in leaks if r.cleanup is None], max(settings.grace, 0.5))
        residue = run.engine.still_present(leaks)
        run.aftermath_now().after_cleanup(owner, leaks, residue, pools)
    else:
        residue = list(leaks)  # left as they are: all of it stays for the tests after
    for resource in residue:  # cleaned up: from here on only remembered
        resource.release()
        run.residue[resource.tracker, resource.key] = ResidueEntry(owner, resource)
    action: str = settings.action
    notes: list[str] = []
    if run.baseline:
        known = [r for r in leaks if run.baseline.knows(owner, r)]
        for resource in known:
            resource.notes.append("(known: in the leakguard baseline)")
        if len(known) == len(leaks):
            action = "baseline"
        elif known:
            notes.append(f"{plural(len(leaks) - len(known), 'leak')} not in the baseline")
    message = format_leaks(
        owner, leaks, cleanup_enabled=settings.cleanup, root=run.root, notes=notes
    )
    return Finding(owner, action, message, leaks, residue)


def _grown(run: Run, found: list[Conclusion]) -> None:
    """A cache (or the native descriptors) past `GROWTH_LIMIT` alive: what this owner added
    is its leak. Never cleaned up all the same: the holder still owns it."""
    for resource in found:
        if resource.category in ("leak", "garbage"):
            continue
        group = resource.holder if resource.category == "cache" else "native descriptors"
        kept = run.kept.setdefault(group, [])
        kept.append(resource)
        if len(kept) > GROWTH_LIMIT:
            kept[:] = run.engine.still_present(kept)
        if len(kept) > GROWTH_LIMIT:
            what = f"process-wide cache {group}" if resource.category == "cache" else group
            resource.notes.append(
                f"{what} keeps growing ({len(kept)} alive): left as is, reported as a leak"
            )
            resource.category = "leak"
            resource.cleanup = "left as is (its holder still owns it)"

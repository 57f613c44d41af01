"""Residue: what a leak left in place (not cleaned up, or not cleanable), by whose it was, and
the note a later test gets when it starts with some of it still there."""

from __future__ import annotations

from dataclasses import dataclass

from leakguard.core.aftermath import Aftermath
from leakguard.core.engine import Snapshot
from leakguard.core.report import plural
from leakguard.core.tracker import Conclusion, Key


@dataclass
class ResidueEntry:
    owner: str
    resource: Conclusion


Residue = dict[tuple[str, Key], ResidueEntry]
"""By ``(tracker, key)``: one entry per resource left in place."""


def residue_note(
    residue: Residue, before: Snapshot, owners: list[str], aftermath: Aftermath
) -> str | None:
    """What of ``residue`` the test's ``before`` snapshot still shows, as its report's note;
    the earlier tests it came from are added to ``owners``. What is gone is forgotten."""
    present = []
    for (name, key), entry in list(residue.items()):
        if key in before.get(name, {}):
            present.append(f"{entry.resource.description} (from {entry.owner})")
            is_test = not entry.owner.startswith("fixture ")
            if is_test and entry.owner not in owners:
                owners.append(entry.owner)
        else:
            del residue[name, key]
            aftermath.residue_gone(entry.owner, entry.resource)
    if not present:
        return None
    return (
        f"ran with residue from earlier tests ({plural(len(present), 'resource')}): "
        + "; ".join(present)
    )

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


def residue_present(
    residue: Residue, before: Snapshot, owners: list[str], aftermath: Aftermath
) -> list[ResidueEntry]:
    """What of ``residue`` the test's ``before`` snapshot still shows; the earlier tests it
    came from are added to ``owners``. What is gone is forgotten.

    Runs at the start of every test once something was left in place (anyio's suite leaves 40
    bare socket numbers): the note's text is made only for a test that fails (`note_of`).
    """
    present = []
    named = set(owners)  # 40 entries from 40 tests: a list's `in` would make it quadratic
    for (name, key), entry in list(residue.items()):
        if key in before.get(name, {}):
            present.append(entry)
            owner = entry.owner
            if owner not in named and not owner.startswith("fixture "):
                named.add(owner)
                owners.append(owner)
        else:
            del residue[name, key]
            aftermath.residue_gone(entry.owner, entry.resource)
    return present


def note_of(present: list[ResidueEntry]) -> str:
    """A failing test's note on the residue it started with."""
    rows = "; ".join(f"{entry.resource.description} (from {entry.owner})" for entry in present)
    return f"ran with residue from earlier tests ({plural(len(present), 'resource')}): {rows}"

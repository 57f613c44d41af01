"""The tracker protocol: what every resource tracker, built-in or third-party, implements."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from leakguard.origin import Origin

Key = Hashable
"""A resource's stable identity: equal keys mean the same resource, never merely the same number."""

Category = Literal["leak", "native", "cache", "garbage"]
"""What leakguard concluded a new resource is:

- ``leak``: the test's own, still there after the grace period: reported, cleaned up, failed.
- ``native``: a descriptor that no Python object holds and no Python call opened (made in C):
  never closed; named in the summary (``leakguard_native_action``).
- ``cache``: still reachable from a library's module-level state (a process-wide cache):
  named once in the summary with its ``holder``; never failed, never cleaned.
- ``garbage``: gone after one garbage collection on the leak path (an unclosed object in a
  reference cycle): counted in the summary by creation site (``leakguard_garbage_action``).
"""


@dataclass
class Resource:
    """One leaked (or live) resource, described for people and for `leakguard_ignore` patterns.

    ``description`` (``kind label detail``) is the text ignore patterns match; the report shows
    ``kind``, ``label`` and the origin in columns.
    """

    tracker: str
    key: Key
    kind: str
    label: str
    detail: str = ""
    origin: Origin | None = None
    verb: str = "created"
    handle: Any = field(default=None, repr=False, compare=False)
    cleanup: str | None = None
    owner: str = ""
    notes: list[str] = field(default_factory=list)
    category: Category = "leak"
    holder: str = ""
    """For a ``cache``: what keeps it, e.g. ``trio._core._thread_cache``."""

    @property
    def description(self) -> str:
        text = f"{self.kind} {self.label}"
        return f"{text} {self.detail}" if self.detail else text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form: what xdist carries to the controller and the JSON report holds."""
        return {
            "tracker": self.tracker,
            "kind": self.kind,
            "label": self.label,
            "detail": self.detail,
            "description": self.description,
            "origin": self.origin.to_dict() if self.origin else None,
            "verb": self.verb,
            "cleanup": self.cleanup,
            "owner": self.owner,
            "notes": list(self.notes),
            "category": self.category,
            "holder": self.holder,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Resource:
        origin = data.get("origin")
        return cls(
            tracker=data["tracker"],
            key=None,
            kind=data["kind"],
            label=data["label"],
            detail=data.get("detail", ""),
            origin=Origin.from_dict(origin) if origin else None,
            verb=data.get("verb", "created"),
            cleanup=data.get("cleanup"),
            owner=data.get("owner", ""),
            notes=list(data.get("notes", [])),
            category=data.get("category", "leak"),
            holder=data.get("holder", ""),
        )


class Tracker:
    """Base class of a tracker: snapshot → diff → describe → clean up.

    ``snapshot()`` runs twice around every checked test, so it must return identities only and
    cost next to nothing; ``describe()`` and ``cleanup()`` run only for what leaked.
    Subclasses set ``name`` and implement ``snapshot`` and ``describe``.
    """

    name: ClassVar[str] = ""
    ends_by_itself: ClassVar[bool] = True
    """Whether a resource of this kind can go away on its own (a thread finishing, a process
    exiting). A descriptor cannot: only something alive can close it, so when nothing of the
    test is alive, waiting out the grace period for it is pure loss."""
    grace: float = 1.0
    """The checked test's grace period (set by the engine), for trackers that must wait on
    their own (e.g. at an event loop's teardown, before the engine's check runs)."""

    def install(self) -> None:
        """Called once when the tracker becomes active (e.g. to start recording origins)."""

    def uninstall(self) -> None:
        """Undo `install`; called once at the end of the run or the `check` block."""

    def snapshot(self) -> Mapping[Key, Any]:
        """Return ``{identity: handle}`` for every resource of this kind alive now.

        The keys must include everything `new_since` may report: when no key is new, the
        engine skips `new_since` (that subset test is the whole clean path). Returning the
        same mapping object as last time, when nothing changed, is cheapest of all.
        """
        raise NotImplementedError

    def new_since(self, before: Mapping[Key, Any], after: Mapping[Key, Any]) -> dict[Key, Any]:
        """What is in ``after`` and not in ``before`` (override to drop benign newcomers)."""
        if after is before or after.keys() <= before.keys():
            return {}
        return {key: after[key] for key in after.keys() - before.keys()}

    def describe(self, key: Key, handle: Any) -> Resource:
        """Describe one new resource (only called for resources that changed)."""
        raise NotImplementedError

    def builtin_ignore(self, resource: Resource) -> str | None:
        """A reason when this resource is legitimately outliving the test, else ``None``."""
        return None

    def cleanup(self, resources: Sequence[Resource], timeout: float) -> list[str]:
        """Remove what leaked; return one outcome per resource (e.g. ``"process 4711 killed"``)."""
        return [f"{r.kind} left as is (no cleanup for this kind)" for r in resources]

    def identify(self, obj: object) -> Key | None:
        """The key of a live object of this kind (for ``leakguard.ignore(obj)``), else ``None``."""
        return None

    def creator_epoch(self, key: Key, handle: Any) -> int | None:
        """The lineage epoch of the code that created this resource, if a record says (see
        `leakguard.lineage`); ``None``: unknown, or not this tracker's kind.

        Called only for resources new since a test's snapshot that the test does not own: one
        made by an earlier test's lineage (a thread it left) is blamed on that earlier test.
        """
        return None

    def owner_object(self, resource: Resource) -> object | None:
        """The Python object whose reachability decides whose ``resource`` is, if any.

        Called on the leak path only: the engine searches what holds this object, and a
        resource still reachable from a library's module-level state is that library's cache
        (category ``cache``), not the test's leak. ``None``: no such object (nothing to search).
        """
        return None

"""The tracker protocol: what every resource tracker, built-in or third-party, implements."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import field, replace
from typing import Any, ClassVar, Generic, Literal, TypeVar

from leakguard.core.origin import Origin, RawOrigin, capture
from leakguard.core.records import dataclass_on_first_use
from leakguard.core.weaksnapshot import weak_key

Key = Hashable
"""A resource's stable identity: equal keys mean the same resource, never merely the same number."""

K = TypeVar("K", bound=Hashable)
"""A tracker's identity type (e.g. ``(pid, start time)``)."""
H = TypeVar("H")
"""A tracker's handle type: what its snapshot maps each identity to (e.g. the ``Thread``)."""
T = TypeVar("T")

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

PhaseName = Literal["before", "after", "grace", "cleanup", "live"]


class Phase:
    """One moment of one check, handed to every tracker's `Tracker.snapshot`.

    ``before`` (the test's set-up), ``after`` (its teardown), ``grace`` (one poll of the grace
    period), ``cleanup`` (what cleanup left), ``live`` (``leakguard.snapshot()``). What trackers
    share within a phase (one scan of the descriptors for ``fds``, ``sockets`` and ``ports``)
    is made once per phase through `shared` and dies with it: nothing shared outlives the
    moment it describes.
    """

    __slots__ = ("_shared", "grace", "name")

    def __init__(self, name: PhaseName, grace: float) -> None:
        self.name = name
        self.grace = grace
        """The checked test's grace period (for trackers that wait on their own, e.g. at an
        event loop's teardown, before the engine's check runs)."""
        self._shared: dict[str, Any] = {}

    def shared(self, key: str, make: Callable[[], T]) -> T:
        """``make()``, called at most once in this phase for ``key``; later callers get its
        result."""
        try:
            value: T = self._shared[key]
        except KeyError:
            value = self._shared[key] = make()
        return value


@dataclass_on_first_use(frozen=True)
class Resource(Generic[K]):
    """One new resource, as its tracker described it; never changed afterwards.

    ``description`` (``kind label detail``) is the text ignore patterns match; the report shows
    ``kind``, ``label`` and the origin in columns. What leakguard concluded about it (whose it
    is, what cleanup did) is a `Conclusion`.
    """

    tracker: str
    key: K
    kind: str
    label: str
    detail: str = ""
    origin: Origin | None = None
    verb: str = "created"
    handle: Any = field(default=None, repr=False, compare=False)
    category: Category = "leak"
    """What the tracker already knows: ``native`` for a descriptor made in C."""
    notes: tuple[str, ...] = ()
    """Facts the tracker found while describing it (e.g. ``made in C``)."""
    epoch: int | None = None
    """The lineage epoch of the code that created it, when recorded (see ``core.lineage``)."""
    ownerless: bool = False
    """The tracker proved that no Python object holds it (a detached socket's bare number): a
    garbage collection cannot free it, so the leak path runs none for it."""

    @property
    def description(self) -> str:
        text = f"{self.kind} {self.label}"
        return f"{text} {self.detail}" if self.detail else text


@dataclass_on_first_use()
class Conclusion:
    """What leakguard concluded about one new `Resource`: its category (the tracker's, or
    ``cache``/``garbage`` from the engine), who keeps it, whose it is, what cleanup did."""

    resource: Resource[Any]
    category: Category = "leak"
    holder: str = ""
    """For a ``cache``: what keeps it, e.g. ``trio._core._thread_cache``."""
    owner: str = ""
    """The test's node id, or the fixture's ``name (scope)``."""
    cleanup: str | None = None
    notes: list[str] = field(default_factory=list)
    kept_by: str = ""
    """The user's application module state that keeps it (``app.pool._POOL``'s module): a leak
    all the same, but cleanup leaves it, since the next user of that state would break."""
    reachable: bool = False
    """The holder search found a loaded module's globals keeping it: no collection frees it."""

    @classmethod
    def of(cls, resource: Resource[Any]) -> Conclusion:
        return cls(resource, resource.category, notes=list(resource.notes))

    def release(self) -> None:
        """Let go of the resource's object once its test is concluded: what the summary and
        the residue keep must not keep a task or loop the user dropped alive (`weak_key`)."""
        resource = self.resource
        key = weak_key(resource.key)
        if key is not resource.key:
            self.resource = replace(resource, key=key, handle=None)

    # What the report reads of the resource, without the indirection at every use.
    @property
    def tracker(self) -> str:
        return self.resource.tracker

    @property
    def key(self) -> Hashable:
        key: Hashable = self.resource.key
        return key

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def label(self) -> str:
        return self.resource.label

    @property
    def detail(self) -> str:
        return self.resource.detail

    @property
    def origin(self) -> Origin | None:
        return self.resource.origin

    @property
    def verb(self) -> str:
        return self.resource.verb

    @property
    def handle(self) -> Any:
        return self.resource.handle

    @property
    def description(self) -> str:
        return self.resource.description

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


def created_here(skip: int = 0) -> RawOrigin | None:
    """Where the caller's caller is: record it when a resource is made (e.g. in a patched
    constructor) and pass it to ``Origin.from_raw`` in `Tracker.describe`.

    Frames of the standard library and of leakguard are skipped; a frame in an installed
    package also names the user's frame that called into it. Costs ≈ 1–2 µs.
    """
    import sys

    return capture(sys._getframe(2 + skip))


class Tracker(Generic[K, H]):
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

    def may_end(self, resource: Resource[K], horizon: float) -> bool:
        """Whether ``resource`` could still go away by itself within ``horizon`` seconds.

        Asked on the leak path only, for trackers whose kind `ends_by_itself`. ``True`` (the
        default) waits out the grace period; a tracker that can prove nothing will end it in
        time (a task on an event loop that nothing can wake) saves the wait.
        """
        return True

    def install(self) -> None:
        """Called once when the tracker becomes active (e.g. to start recording origins)."""

    def uninstall(self) -> None:
        """Undo `install`; called once at the end of the run or the `check` block."""

    def snapshot(self, phase: Phase) -> Mapping[K, H]:
        """Return ``{identity: handle}`` for every resource of this kind alive now.

        The keys must include everything `new_since` may report: when no key is new, the
        engine skips `new_since` (that subset test is the whole clean path). Returning the
        same mapping object as last time, when nothing changed, is cheapest of all.
        """
        raise NotImplementedError

    def new_since(self, before: Mapping[K, H], after: Mapping[K, H]) -> dict[K, H]:
        """What is in ``after`` and not in ``before`` (override to drop benign newcomers)."""
        if after is before or after.keys() <= before.keys():
            return {}
        return {key: after[key] for key in after.keys() - before.keys()}

    def describe(self, key: K, handle: H) -> Resource[K]:
        """Describe one new resource (only called for resources that changed)."""
        raise NotImplementedError

    def builtin_ignore(self, resource: Resource[K]) -> str | None:
        """A reason when this resource is legitimately outliving the test, else ``None``."""
        return None

    def cleanup(self, resources: Sequence[Resource[K]], timeout: float) -> list[str]:
        """Remove what leaked; return one outcome per resource (e.g. ``"process 4711 killed"``).

        Only what the test provably owns reaches this method, and only through its owner
        object: never close a bare descriptor number, never signal a process without proof of
        lineage, never shut down an owner older than the test.
        """
        return [f"{r.kind} left as is (no cleanup for this kind)" for r in resources]

    def identify(self, obj: object) -> K | None:
        """The key of a live object of this kind (for ``leakguard.ignore(obj)``), else ``None``."""
        return None

    def creator_epoch(self, key: K, handle: H) -> int | None:
        """The lineage epoch of the code that created this resource, if a record says (see
        `leakguard.core.lineage`); ``None``: unknown, or not this tracker's kind.

        Called only for resources new since a test's snapshot that the test does not own: one
        made by an earlier test's lineage (a thread it left) is blamed on that earlier test.
        """
        return None

    def owner_object(self, resource: Resource[K]) -> object | None:
        """The Python object whose reachability decides whose ``resource`` is, if any.

        Called on the leak path only: the engine searches what holds this object, and a
        resource still reachable from a library's module-level state is that library's cache
        (category ``cache``), not the test's leak. ``None``: no such object (nothing to search).
        An exception is noted on the resource's report.
        """
        return None

    def known_keeper(self, resource: Resource[K]) -> str | None:
        """The library whose module state keeps ``resource`` as its process-wide cache, when
        the tracker can prove it directly (e.g. the thread is an idle worker in the library's
        own module-level pool), or ``None``.

        Called on the leak path, before any waiting: a resource proven to be a library's cache
        is not the test's leak and will not end within the grace period (trio's idle workers
        wait 10 s), so neither the wait nor the holder search (`owner_object`) is spent on it.
        Prove, never guess by name: ``None`` leaves the decision to that search.
        """
        return None


AnyTracker = Tracker[Any, Any]

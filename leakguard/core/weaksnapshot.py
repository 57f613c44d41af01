"""A snapshot that lists live objects without keeping them alive.

A tracker whose keys are the objects themselves (the ``tasks`` tracker: tasks and event loops)
cannot hand back a plain dict: the engine keeps each test's snapshot until the test ends and the
last one until the next test begins, so an object listed once would be listed again by every
later snapshot and never freed. A loop the user dropped unclosed would keep its selector and
self-pipe open for the rest of the run, and its "unclosed event loop" warning would never come:
leakguard would have changed the process it watches. Here each key is held by a weak reference;
an object that dies drops out of every snapshot that listed it.

Lookups stay exact when an address is reused: a dead reference equals only itself, so a new
object at the old one's address is not "in" a snapshot that listed the old one.

What outlives a test's verdict (its findings for the summary, the residue later tests are told
about) holds such a key as a `WeakKey`, for the same reason: a leak left in place must not be
kept in place by leakguard.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, KeysView, Mapping
from typing import Any, TypeVar

H = TypeVar("H")
_IDENTITY_EQ: Any = object.__eq__
_IDENTITY_HASH: Any = object.__hash__


class WeakKey:
    """An identity-compared key, weakly held: equal to its object while it lives (either way
    round), and only to itself once the object is gone."""

    __slots__ = ("_hash", "ref")

    def __init__(self, obj: object) -> None:
        self.ref = weakref.ref(obj)
        self._hash = hash(obj)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        obj = self.ref()
        if obj is None:
            return self is other
        if isinstance(other, WeakKey):
            return obj is other.ref()
        return obj is other

    def __repr__(self) -> str:
        obj = self.ref()
        return f"WeakKey({obj!r})" if obj is not None else "WeakKey(<gone>)"


def weak_key(key: Any) -> Any:
    """``key`` as a `WeakKey` when it is an object compared by identity that takes a weak
    reference (a task, a loop, a thread); any other key (a tuple of numbers, a value) as is."""
    kind: Any = type(key)
    if kind.__eq__ is not _IDENTITY_EQ or kind.__hash__ is not _IDENTITY_HASH:
        return key
    try:
        return WeakKey(key)
    except TypeError:
        return key


class WeakSnapshot(Mapping[Any, H]):
    """``{object: handle}`` whose objects are weakly held (strongly only when an object takes
    no weak reference, e.g. a future type with ``__slots__``)."""

    __slots__ = ("_strong", "_weak")

    def __init__(self, items: Mapping[Any, H]) -> None:
        weak: dict[weakref.ref[Any], H] = {}
        strong: dict[Any, H] = {}
        ref = weakref.ref
        for key, handle in items.items():
            try:
                weak[ref(key)] = handle
            except TypeError:
                strong[key] = handle
        self._weak = weak
        self._strong = strong

    def __getitem__(self, key: Any) -> H:
        if isinstance(key, WeakKey):
            obj = key.ref()
            if obj is None:
                raise KeyError(key)
            key = obj
        try:
            return self._weak[weakref.ref(key)]
        except TypeError:
            return self._strong[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, WeakKey):
            obj = key.ref()
            if obj is None:
                return False
            key = obj
        try:
            return weakref.ref(key) in self._weak
        except TypeError:
            return key in self._strong

    def __iter__(self) -> Iterator[Any]:
        for ref in list(self._weak):
            obj = ref()
            if obj is not None:
                yield obj
        yield from list(self._strong)

    def __len__(self) -> int:
        return sum(1 for ref in list(self._weak) if ref() is not None) + len(self._strong)

    def keys(self) -> KeysView[Any]:
        return _Keys(self)

    def __repr__(self) -> str:
        return f"WeakSnapshot({dict(self.items())!r})"


class _Keys(KeysView[Any]):
    """The engine's clean-path test, ``now.keys() <= before.keys()``, between two weak
    snapshots: compared reference by reference in C (≈ 1 µs for 50 tasks, where comparing
    object by object took 20 µs). A reference that died in between makes it false: the
    careful comparison that follows then skips the dead."""

    _mapping: WeakSnapshot[Any]

    def __le__(self, other: object) -> bool:
        if isinstance(other, _Keys):
            mine, theirs = self._mapping, other._mapping
            return (
                mine._weak.keys() <= theirs._weak.keys()
                and mine._strong.keys() <= theirs._strong.keys()
            )
        return super().__le__(other)  # type: ignore[operator]

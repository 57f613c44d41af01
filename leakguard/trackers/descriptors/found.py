"""What the owner searches of one check found, by descriptor identity, shared by the descriptor
trackers (`base.ScanningTracker.chains`): held weakly, so that keeping a leaked file here never
keeps its descriptor open (a garbage-only leak would never look like one). Leak path only."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any

from leakguard.core.compat import selector_poller
from leakguard.trackers.descriptors.owners import Chain
from leakguard.trackers.descriptors.owners import _fileno as holds
from leakguard.trackers.descriptors.scan import FdKey, FdScan

WeakChains = list[list[Callable[[], Any]]]
"""A descriptor's chains of owners, each object as a callable returning it (or None)."""


class FoundOwners:
    """What the owner searches of one check found, by descriptor identity, shared by the
    descriptor trackers: a test that leaks a socket and a file walks the heap once, and the
    rescans after a garbage collection (a new scan) do not walk it again.

    Objects are held weakly; an identity whose owner is gone, or no longer holds the number,
    is searched again. "No owner found" is kept for the check (a new owner of a descriptor
    the test left could only come from code still running: at worst it is reported and left
    open, never closed). Cleared when a check begins (`own_descriptors`).
    """

    __slots__ = ("_keys", "weak")

    def __init__(self) -> None:
        self.weak: dict[FdKey, WeakChains] = {}
        self._keys: tuple[FdScan | None, dict[int, FdKey]] = (None, {})

    def clear(self) -> None:
        if self.weak:
            self.weak.clear()
        self._keys = (None, {})

    def keys_of(self, scan: FdScan | None) -> dict[int, FdKey]:
        """Number → identity in ``scan`` (worked out once per scan)."""
        if scan is None:
            return {}
        if self._keys[0] is not scan:
            self._keys = (scan, {key[0]: key for key in scan.fds})
        return self._keys[1]

    def revive(self, key: FdKey) -> list[Chain] | None:
        """The chains found for ``key``, or None when never searched or no longer valid."""
        chains = self.weak.get(key)
        if chains is None:
            return None
        revived = _revive(chains, key[0])
        if revived is None:
            del self.weak[key]
        return revived

    def add(
        self,
        found: dict[int, list[Chain]],
        keys: dict[int, FdKey],
        selectors: Mapping[int, Any] | None = None,
    ) -> None:
        """Keep what a search found for ``keys`` (number → identity). ``selectors``: the
        recorded selector holding a number's ``epoll``, which takes no weak reference itself
        and is kept through its selector; an ``epoll`` no selector holds is not kept."""
        selectors = selectors or {}
        for number, key in keys.items():
            chains = found.get(number, [])
            try:
                self.weak[key] = [
                    [_weak(o, selectors.get(number)) for o in c.objects] for c in chains
                ]
            except TypeError:
                self.weak.pop(key, None)


class _ThroughSelector:
    """A weak reference to a selector's ``epoll``, by way of the selector: calling it gives the
    ``epoll`` while the selector lives and still has it, else None."""

    __slots__ = ("_selector",)

    def __init__(self, selector: Any) -> None:
        self._selector = weakref.ref(selector)

    def __call__(self) -> Any:
        return selector_poller(self._selector())


def _weak(obj: Any, selector: Any) -> Callable[[], Any]:
    """A weak reference to ``obj``; through ``selector`` when ``obj`` is its ``epoll``.
    TypeError when neither can be made."""
    try:
        return weakref.ref(obj)
    except TypeError:
        if selector is None or selector_poller(selector) is not obj:
            raise
        return _ThroughSelector(selector)


def polling_of(selectors: Mapping[int, Any]) -> dict[int, Any]:
    """Number → the ``epoll`` (``devpoll``, ``kqueue``) object of the selector holding it."""
    return {number: selector_poller(selector) for number, selector in selectors.items()}


FOUND_OWNERS = FoundOwners()


def _revive(chains: WeakChains, fd: int) -> list[Chain] | None:
    """The cached chains, or None when one of their objects is gone or no longer holds ``fd``
    (closed since, and the number perhaps reused: look again)."""
    revived = []
    for refs in chains:
        objects = [ref() for ref in refs]
        if any(o is None or holds(o) != fd for o in objects):
            return None
        revived.append(Chain(objects))
    return revived

"""The leak path's garbage collection: what only the collector frees is garbage, not a leak."""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from leakguard.core.leakpath import CollectorPause
from leakguard.core.report import FREED_NOTE
from leakguard.core.tracker import AnyTracker, Conclusion

if TYPE_CHECKING:
    from leakguard.core.polling import Poll


def sort_out_garbage(
    found: list[Conclusion],
    poll: Poll,
    trackers: Mapping[str, AnyTracker],
    said: list[str] | None = None,
    search_holders: Callable[[list[Conclusion]], None] | None = None,
    order: CollectionOrder | None = None,
) -> list[Conclusion]:
    """Collect garbage once (young generations first, all of them only if that was not
    enough): a descriptor that goes away then was freed only by the collector, an
    unclosed object in a reference cycle. Never on the clean path. What is gone before the
    collection (one more poll first) went by itself.

    ``search_holders``: the holder search a leak gets anyway (`Engine.classify`), run before
    the full collection: what a loaded module's globals keep (``Conclusion.reachable``) no
    collection can free, and when that is all that is left the full collection (≈ 15 ms on
    a 100,000-object heap, more on a big one) is skipped; ``order`` says whether searching
    first is worth it, by what the run has met at each leak's creation site.

    ``said``: what finalizers said so far on the leak path. When an automatic collection
    already freed something (a finalizer spoke), what is gone now is that garbage, whatever
    its category was taken for while it went (a socket closed under its description reads
    as one no Python object holds).
    """
    if said:
        gone = _claim_gone(found, {(r.tracker, r.key) for r in poll()}, trackers, said)
        if gone:
            rest = [c for c in found if not any(c is g for g in gone)]
            return sort_out_garbage(rest, poll, trackers) + gone if rest else gone
    # A native descriptor (no Python object holds it: the owner search looked at every
    # object the collector knows) cannot be closed by a collection: no collection for it
    # (≈ 20 ms per flagged test on a 100,000-object heap).
    # The same for one its tracker proved no Python object holds (``Resource.ownerless``).
    passive = {
        (r.tracker, r.key)
        for r in found
        if r.category != "native"
        and not r.resource.ownerless
        and not getattr(trackers.get(r.tracker), "ends_by_itself", True)
    }
    if not passive:
        return found
    if poll.collections == collections():
        # One more look first: what a thread of the test closed since the last poll (while
        # the leak path described and searched) ended by itself, not by the collection below.
        # Only when no collection ran since that poll began (what one freed is garbage) and
        # with none during this look.
        with CollectorPause():
            fresh = poll()
        passive &= {(r.tracker, r.key) for r in fresh}
        if not passive:
            return fresh
    # The leak path's own list, which its hook fills as it hears: the holder search below lets
    # go of the owner objects it held, and a leak whose last reference that was is freed then.
    heard = said
    said = collect(1)
    after = poll()
    if passive <= {(r.tracker, r.key) for r in after}:
        kept: set[tuple[str, Any]] = set()
        first = [
            c
            for c in found
            if (c.tracker, c.key) in passive and (order is None or order.search_first(c))
        ]
        if search_holders is not None and first:
            search_holders(first)
            kept = {(c.tracker, c.key) for c in first if c.reachable}
            passive -= kept
        if passive:
            said += collect(None)
            after = poll()
        if order is not None:
            still = {(r.tracker, r.key) for r in after}
            for conclusion in found:
                key = (conclusion.tracker, conclusion.key)
                if key in kept or key in passive:
                    order.learn(conclusion, freed=key in passive and key not in still)
    left = {(r.tracker, r.key) for r in after}
    freed = [c for c in found if (c.tracker, c.key) in passive - left]
    if freed and heard:  # heard while searching: this garbage's too
        said += heard
        heard.clear()
    for conclusion in freed:
        conclusion.category = "garbage"
        # What the finalizers said (an unclosed socket's ResourceWarning under -W error):
        # this test's garbage, so this test's report, not the next test's error.
        conclusion.notes.extend(said)
    return after + freed


def freed_while_waiting(
    first: list[Conclusion],
    found: list[Conclusion],
    trackers: Mapping[str, AnyTracker],
    said: list[str],
) -> list[Conclusion]:
    """What the grace wait saw go (of ``first``, not in ``found``) while a finalizer spoke:
    garbage the collector freed meanwhile (an automatic collection, or one a thread of the test
    ran), with what the finalizers said as its notes; ``said`` is emptied.

    Without this, a wait that ends with nothing left would return before `sort_out_garbage`,
    and what the finalizer said (an unclosed socket's ResourceWarning under -W error) went on
    to pytest, which reports it on the next test: an error for a test that did nothing.
    """
    if not said:
        return []
    return _claim_gone(first, {(c.tracker, c.key) for c in found}, trackers, said)


def _claim_gone(
    candidates: list[Conclusion],
    left: set[tuple[str, Any]],
    trackers: Mapping[str, AnyTracker],
    said: list[str],
) -> list[Conclusion]:
    """Of ``candidates``, those not ``left`` that cannot end by themselves, claimed as garbage
    with what the finalizers ``said`` (emptied if any is claimed). Whatever category each was
    taken for: one closed under its description reads as one no Python object holds."""
    gone = [
        c
        for c in candidates
        if (c.tracker, c.key) not in left
        and not getattr(trackers.get(c.tracker), "ends_by_itself", True)
    ]
    if gone:
        for conclusion in gone:
            conclusion.category = "garbage"
            conclusion.notes.extend(said)
        said.clear()
    return gone


class CollectionOrder:
    """Search a leak's holders before the full collection, or collect first: by what this run
    has met at the leak's creation site. A search that proves every leak left kept by a loaded
    module spares the collection; one made for garbage (an unclosed object in an old reference
    cycle, which the collection frees anyway) is wasted, and costs more than the collection
    when it must look past the collector's list (an ``epoll``). One line of library code tends
    to leave the same thing every time (110 tests' selectors in a cycle, from one line), so
    each site decides for itself; a site not met yet searches first (real leaks are what a
    suite's flags mostly are). Verdicts are the same either way; only the cost differs.
    """

    __slots__ = ("_sites",)

    def __init__(self) -> None:
        self._sites: dict[Hashable, list[int]] = {}
        """Creation site -> [freed by a full collection, proven kept or left by one]."""

    def search_first(self, conclusion: Conclusion) -> bool:
        freed, kept = self._sites.get(_site(conclusion), (0, 0))
        return kept >= freed

    def learn(self, conclusion: Conclusion, *, freed: bool) -> None:
        sites = self._sites
        counts = sites.get(site := _site(conclusion))
        if counts is None:
            while len(sites) >= _MAX_SITES:
                del sites[next(iter(sites))]
            counts = sites[site] = [0, 0]
        counts[0 if freed else 1] += 1


_MAX_SITES = 4096


def _site(conclusion: Conclusion) -> Hashable:
    origin = conclusion.resource.origin
    where = (origin.filename, origin.lineno) if origin is not None else None
    return conclusion.tracker, conclusion.kind, where


def collections() -> int:
    """How many garbage collections this process ran so far (automatic or asked for)."""
    return sum(generation["collections"] for generation in gc.get_stats())


@contextlib.contextmanager
def finalizers_heard() -> Iterator[list[str]]:
    """What finalizers raise meanwhile (``Exception ignored in …``), as lines, instead of
    through ``sys.unraisablehook``; what no finding took as a note is handed on to the
    previous hook at the end, so nothing is lost."""
    said: list[str] = []
    heard: list[Any] = []

    def note(args: Any) -> None:
        heard.append(args)
        said.append(_line(args))

    previous = sys.unraisablehook
    sys.unraisablehook = note
    try:
        yield said
    finally:
        sys.unraisablehook = previous
        if said:  # nobody took them: the previous hook (pytest's) reports them as before
            for args in heard:
                previous(args)


def _line(args: Any) -> str:
    what = args.err_msg or "Exception ignored in"
    error = f"{type(args.exc_value).__name__}: {args.exc_value}" if args.exc_value else ""
    return f"{FREED_NOTE}{what}: {args.object!r}: {error}".rstrip(": ")


def collect(generation: int | None) -> list[str]:
    """One garbage collection; what finalizers raised meanwhile (``Exception ignored in …``),
    as lines, instead of through ``sys.unraisablehook``.

    Left to the hook, pytest would report them on the *next* test (its check of this test's
    teardown is over by the time leakguard collects), failing a test that did nothing.
    """
    said: list[str] = []

    def note(args: Any) -> None:
        said.append(_line(args))

    previous = sys.unraisablehook
    sys.unraisablehook = note
    try:
        gc.collect() if generation is None else gc.collect(generation)
    finally:
        sys.unraisablehook = previous
    return said

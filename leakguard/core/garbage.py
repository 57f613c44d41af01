"""The leak path's garbage collection: what only the collector frees is garbage, not a leak."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Mapping
from typing import Any

from leakguard.core.report import FREED_NOTE
from leakguard.core.tracker import AnyTracker, Conclusion


def sort_out_garbage(
    found: list[Conclusion],
    poll: Callable[[], list[Conclusion]],
    trackers: Mapping[str, AnyTracker],
) -> list[Conclusion]:
    """Collect garbage once (young generations first, all of them only if that was not
    enough): a descriptor that goes away then was freed only by the collector, an
    unclosed object in a reference cycle. Never on the clean path."""
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
    said = collect(1)
    after = poll()
    if passive <= {(r.tracker, r.key) for r in after}:
        said += collect(None)
        after = poll()
    left = {(r.tracker, r.key) for r in after}
    freed = [c for c in found if (c.tracker, c.key) in passive - left]
    for conclusion in freed:
        conclusion.category = "garbage"
        # What the finalizers said (an unclosed socket's ResourceWarning under -W error):
        # this test's garbage, so this test's report, not the next test's error.
        conclusion.notes.extend(said)
    return after + freed


def collect(generation: int | None) -> list[str]:
    """One garbage collection; what finalizers raised meanwhile (``Exception ignored in …``),
    as lines, instead of through ``sys.unraisablehook``.

    Left to the hook, pytest would report them on the *next* test (its check of this test's
    teardown is over by the time leakguard collects), failing a test that did nothing.
    """
    said: list[str] = []

    def note(args: Any) -> None:
        what = args.err_msg or "Exception ignored in"
        error = f"{type(args.exc_value).__name__}: {args.exc_value}" if args.exc_value else ""
        said.append(f"{FREED_NOTE}{what}: {args.object!r}: {error}".rstrip(": "))

    previous = sys.unraisablehook
    sys.unraisablehook = note
    try:
        gc.collect() if generation is None else gc.collect(generation)
    finally:
        sys.unraisablehook = previous
    return said

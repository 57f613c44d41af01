"""Reference-counted monkeypatching, so nested users (a pytester run inside a run, a
`leakguard.check` block inside a checked test) share one wrapper and the last one out restores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_MARK = "__leakguard_patch__"


def install(owner: Any, attr: str, make_wrapper: Callable[[Any], Any]) -> None:
    """Replace ``owner.attr`` by ``make_wrapper(original)``, or count one more user if patched."""
    current = getattr(owner, attr)
    state = getattr(current, _MARK, None)
    if state is not None:
        state["users"] += 1
        return
    wrapper = make_wrapper(current)
    setattr(wrapper, _MARK, {"users": 1, "original": current})
    setattr(owner, attr, wrapper)


def uninstall(owner: Any, attr: str) -> None:
    """Drop one user of the patch on ``owner.attr``; restore the original after the last."""
    current = getattr(owner, attr, None)
    state = getattr(current, _MARK, None)
    if state is None:
        return
    state["users"] -= 1
    if state["users"] <= 0:
        setattr(owner, attr, state["original"])

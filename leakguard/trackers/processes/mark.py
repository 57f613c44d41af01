"""The run's environment mark, tagged per spawn with the epoch of the code that spawned it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from leakguard.core import compat
from leakguard.core.lineage import NO_EPOCH


def tagged_env(env: Any, name: str, value: str, epoch: int) -> Any:
    """The environment to hand a child spawned under ``epoch``.

    The run's mark ``NAME=VALUE`` becomes ``NAME=VALUE:EPOCH`` in the child's environment only
    (``os.environ`` is never changed per test): every exec'd descendant that keeps it inherits
    the tag, so one found re-parented to init is still tied to the spawn it came from, and so to
    the test (or fixture) whose code spawned it. An environment without our mark (the test's
    own ``env={...}``, or a test that removed the mark) is handed on as given.
    """
    if epoch == NO_EPOCH:
        return env
    if env is None or env is os.environ:
        if os.environ.get(name) != value:
            return env
        data = compat.environ_bytes()
        if data is not None:
            copy: dict[Any, Any] = dict(data)
            copy[os.fsencode(name)] = os.fsencode(f"{value}:{epoch}")
        else:
            copy = dict(os.environ)
            copy[name] = f"{value}:{epoch}"
        return copy
    if isinstance(env, Mapping):
        for key in (name, os.fsencode(name)):
            found = env.get(key)
            if found == value or found == os.fsencode(value):
                tagged = dict(env)
                tag = f"{value}:{epoch}"
                tagged[key] = os.fsencode(tag) if isinstance(found, bytes) else tag
                return tagged
    return env

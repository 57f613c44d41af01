"""The last line of a leak report: the command that runs the test again alone, as it ran."""

from __future__ import annotations

import os
import shlex

import pytest

MAX_EARLIER = 3
"""Earlier tests named at most: the nearest ones. A run whose leftovers pile up (natives, a
growing cache) would otherwise print every earlier leaker in every later report."""


def reproduce_line(config: pytest.Config, nodeid: str, earlier: list[str]) -> str:
    """``reproduce: pytest 'tests/test_x.py::test_y' --leakguard``, with the flags that make
    the run alone behave as this one: one process, and this order when residue mattered."""
    left_out = max(0, len(earlier) - MAX_EARLIER)
    named = earlier[left_out:]
    tests = (_as_typed(config, test) for test in (*named, nodeid))
    words = ["pytest", *(shlex.quote(test) for test in tests), "--leakguard"]
    plugins = config.pluginmanager
    if hasattr(config, "workerinput") or getattr(config.option, "numprocesses", None):
        words += ["-n", "0"]
    if plugins.has_plugin("randomly"):
        # The seed only when the order was random (--randomly-dont-reorganize keeps it): the
        # plugin sorts by a hash of seed and test id, so the listed tests replay in this order.
        seed = getattr(config.option, "randomly_seed", None)
        shuffled = getattr(config.option, "randomly_reorganize", True)
        if earlier and shuffled and isinstance(seed, int):
            words.append(f"-p randomly --randomly-seed={seed}")
        else:
            words += ["-p", "no:randomly"]
    line = "reproduce: " + " ".join(words)
    if left_out:
        line += f"  (and {left_out} earlier test(s) whose residue was present, not named)"
    return line


def _as_typed(config: pytest.Config, nodeid: str) -> str:
    """A node id as typed where pytest was started: ids are relative to the rootdir, which is
    not the working directory when the run was started elsewhere (``pytest demo``)."""
    here = config.invocation_params.dir
    if here == config.rootpath:
        return nodeid
    path, sep, rest = nodeid.partition("::")
    try:
        typed = os.path.relpath(config.rootpath / path, here)
    except ValueError:  # another drive (Windows): the id as it is
        return nodeid
    return typed + sep + rest

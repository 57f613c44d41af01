"""How the suite's inner pytest runs start: the common options and the subprocess runner."""

from __future__ import annotations

import pytest

SHORT_GRACE = ("-o", "leakguard_grace=0.05")
# Inner runs: no cache dir, no pytest-asyncio unless a test asks for it, short grace.
QUIET = ("-p", "no:cacheprovider", "-p", "no:asyncio", "-p", "no:randomly")


def run_checked(pytester: pytest.Pytester, *args: str, trackers: str) -> pytest.RunResult:
    """pytest in a subprocess, leakguard on with ``trackers`` and a short grace.

    A subprocess: an in-process inner run would share (and snapshot) this process's
    descriptors and children, and a leaked process must not hit this one. A timeout: some
    inner runs hung or aborted before their fix; one that hangs again fails instead.
    """
    return pytester.runpytest_subprocess(
        "--leakguard", *QUIET, *SHORT_GRACE, "-o", f"leakguard_trackers={trackers}", *args,
        timeout=60,
    )  # fmt: skip

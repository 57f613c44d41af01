"""What a checked run's start-up leaves out: pytest's assertion rewriter for leakguard's own
modules, and the leak path's dataclasses until something leaks (issue 11, item 6)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.options import QUIET, SHORT_GRACE

# At the run's end: which of leakguard's modules pytest's assertion rewriter was asked to find,
# and whether the leak path's records are dataclasses yet.
PROBE = """
import dataclasses, sys
from _pytest.assertion.rewrite import AssertionRewritingHook

ASKED = []
_find_spec = AssertionRewritingHook.find_spec

def find_spec(self, name, *args, **kwargs):
    if name.startswith("leakguard."):
        ASKED.append(name)
    return _find_spec(self, name, *args, **kwargs)

AssertionRewritingHook.find_spec = find_spec

def pytest_sessionfinish(session):
    print("\\nrewriter asked for leakguard.core.engine:", "leakguard.core.engine" in ASKED)
    tracker = sys.modules["leakguard.core.tracker"]
    origin = sys.modules["leakguard.core.origin"]
    made = [c.__name__ for c in (tracker.Resource, tracker.Conclusion, origin.Origin)
            if dataclasses.is_dataclass(c)]
    print("dataclasses made:", " ".join(made) or "none")
"""

CLEAN = "def test_clean():\n    pass\n"
LEAKY = """
import threading

def test_leaky():
    threading.Thread(target=threading.Event().wait, args=(2.0,), daemon=True).start()
"""


# The control: the finder leakguard put in front taken out again, before the run imports its
# machinery: pytest's rewriter then loads the modules of leakguard's distribution, as any
# plugin's.
NO_FINDER = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "leakguard_own_modules", False)]
"""


@pytest.mark.parametrize("case", ["case", "control"])
def test_leakguards_modules_are_imported_past_the_assertion_rewriter(
    pytester: pytest.Pytester, case: str
) -> None:
    pytester.makeconftest(PROBE + (NO_FINDER if case == "control" else ""))
    pytester.makepyfile(test_it=CLEAN)
    result = pytester.runpytest_subprocess(
        "--leakguard", *QUIET, "-s", "-W", "error::pytest.PytestAssertRewriteWarning", timeout=60
    )
    result.assert_outcomes(passed=1)
    asked = case == "control"
    result.stdout.fnmatch_lines([f"rewriter asked for leakguard.core.engine: {asked}"])
    result.stdout.no_fnmatch_line("*PytestAssertRewriteWarning*")


@pytest.mark.parametrize("case", ["case", "control"])
def test_a_run_that_leaks_nothing_makes_none_of_the_leak_paths_dataclasses(
    pytester: pytest.Pytester, case: str
) -> None:
    pytester.makeconftest(PROBE)
    pytester.makepyfile(test_it=CLEAN if case == "case" else LEAKY)
    result = pytester.runpytest_subprocess(
        "--leakguard", *QUIET, *SHORT_GRACE, "-o", "leakguard_trackers=threads", "-s", timeout=60
    )
    if case == "case":
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["dataclasses made: none"])
    else:  # the leak path made them, and the report is whole
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(["dataclasses made: Resource Conclusion Origin"])
        result.stdout.fnmatch_lines(
            ["*leaked 1 resource*", "*thread*started at test_it.py:4 in test_leaky*"]
        )


@pytest.mark.parametrize(
    ("reach", "expected"),
    [
        ("import leakguard; Resource = leakguard.Resource", "True"),
        # The control: the class as its module defines it, before any instance.
        ("from leakguard.core.tracker import Resource", "False"),
    ],
)
def test_a_record_handed_out_by_the_package_is_a_dataclass_already(
    reach: str, expected: str
) -> None:
    code = f"import dataclasses\n{reach}\nprint(dataclasses.is_dataclass(Resource))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == expected


# At the run's end: which of the libraries the trackers hook a run that never used them loaded.
LOADED = """
import sys

def pytest_sessionfinish(session):
    loaded = [m for m in ("asyncio", "concurrent.futures", "ssl") if m in sys.modules]
    print("\\nloaded:", " ".join(loaded) or "none")
"""

FIRST_USE = """
KEEP = []

def test_clean():
    pass

def test_leaks_on_its_first_asyncio():  # control only
    import asyncio

    loop = asyncio.new_event_loop()
    KEEP.append(loop.create_task(asyncio.sleep(3600)))
    KEEP.append(loop)

def test_leaks_the_pool_it_made_on_first_import():  # control only
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="own-pool")
    KEEP.append(pool)
    pool.submit(lambda: None).result()
"""


@pytest.mark.parametrize("case", ["case", "control"])
def test_the_hooks_wait_for_the_first_import_of_asyncio_and_concurrent_futures(
    pytester: pytest.Pytester, case: str
) -> None:
    pytester.makeconftest(LOADED)
    lines = FIRST_USE.splitlines()
    if case == "case":  # the clean test alone: the file up to the first control-only test
        lines = lines[: lines.index("def test_leaks_on_its_first_asyncio():  # control only")]
    pytester.makepyfile(test_it="\n".join(lines))
    # anyio's plugin (installed here) imports asyncio: kept out, as in a suite without it.
    args = ("--leakguard", *QUIET, *SHORT_GRACE, "-p", "no:anyio", "-s")
    if case == "case":  # every tracker on; nothing imported asyncio or concurrent.futures
        result = pytester.runpytest_subprocess(*args, timeout=60)
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["loaded: none"])
        return
    # The control: the first import happens inside the test, and what it made is still seen
    # whole: the loop and the task with their lines, and the pool as the test's own (without
    # its creation stamp the pool would pass for an older owner's).
    result = pytester.runpytest_subprocess(*args, "-k", "asyncio", timeout=60)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["loaded: asyncio concurrent.futures ssl"])
    result.stdout.fnmatch_lines(
        [
            "*leaked 2 resources",
            "  event loop left open * created at test_it.py:9 in test_leaks_on_its_first_asyncio",
            "  task *'Task-1'* created at test_it.py:10 in test_leaks_on_its_first_asyncio",
        ]
    )
    result = pytester.runpytest_subprocess(*args, "-k", "pool", timeout=60)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["loaded: concurrent.futures"])
    result.stdout.fnmatch_lines(
        ["cleanup: ThreadPoolExecutor shut down, worker 'own-pool_0' stopped"]
    )


BROKEN_HOOKS = """
import sys, types

# The tasks tracker's hooks, broken: hooking asyncio fails when a test first imports it.
sys.modules["leakguard.trackers.tasks.recording"] = types.ModuleType("broken")
"""


@pytest.mark.parametrize("case", ["case", "control"])
def test_a_fault_hooking_asyncio_at_its_first_import_is_reported_not_raised(
    pytester: pytest.Pytester, case: str
) -> None:
    if case == "case":
        pytester.makeconftest(BROKEN_HOOKS)
    pytester.makepyfile(
        test_it="""
        def test_imports_asyncio():
            import asyncio
            assert asyncio.get_event_loop_policy() is not None
        """
    )
    result = pytester.runpytest_subprocess(
        "--leakguard", *QUIET, *SHORT_GRACE, "-p", "no:anyio", timeout=60
    )
    result.assert_outcomes(passed=1)  # the user's import and result stand either way
    problem = (
        "*internal problem: tracker 'tasks', snapshot during test_it.py::test_imports_asyncio*"
    )
    if case == "case":
        result.stdout.fnmatch_lines(["internal problems (1;*", problem])
    else:  # the control: the same run with working hooks has nothing to report
        result.stdout.no_fnmatch_line("*internal problem*")

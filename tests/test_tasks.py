"""The ``tasks`` tracker: pending asyncio tasks and open event loops, under pytest-asyncio (every
loop scope, strict and auto mode), anyio's plugin, and plain sync tests."""

from __future__ import annotations

import asyncio

import pytest

import leakguard
from tests.support.outcomes import assert_leaked
from tests.support.pairs import run_pair

SCOPES = ["function", "class", "module", "package", "session"]
MODES = ["strict", "auto"]


def run_tasks(
    pytester: pytest.Pytester, *args: str, grace: str = "0.05", subprocess: bool = False
) -> pytest.RunResult:
    run = pytester.runpytest_subprocess if subprocess else pytester.runpytest
    return run(
        "-p",
        "no:cacheprovider",
        "--leakguard",
        "-o",
        "leakguard_trackers=tasks",
        "-o",
        f"leakguard_grace={grace}",
        *args,
    )


def asyncio_ini(pytester: pytest.Pytester, mode: str = "strict") -> None:
    pytester.makeini(
        f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n"
    )


def write_in_package(pytester: pytest.Pytester, source: str) -> None:
    """A package, so that ``loop_scope="package"`` has a package to live in."""
    package = pytester.mkpydir("pkg")
    (package / "test_leaky.py").write_text(source)


# --- what it catches -----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scope", SCOPES)
def test_task_left_pending_is_reported_on_every_loop_scope(
    pytester: pytest.Pytester, scope: str, mode: str
) -> None:
    asyncio_ini(pytester, mode)
    write_in_package(
        pytester,
        f"""
import asyncio, pytest

class TestLeaky:
    @pytest.mark.asyncio(loop_scope="{scope}")
    async def test_leaky(self):
        asyncio.create_task(asyncio.sleep(30), name="sleeper")
""",
    )
    result = run_tasks(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*leakguard: pkg/test_leaky.py::TestLeaky::test_leaky leaked 1 resource",
            # 3.10 has no co_qualname: the function name alone
            "*task 'sleeper' coro=asyncio.tasks:sleep*created at pkg/test_leaky.py:7 in *test_leaky",
            "cleanup: task cancelled*",
        ]
    )


def test_task_on_function_scoped_loop_is_reported_before_pytest_asyncio_cancels_it(
    pytester: pytest.Pytester,
) -> None:
    asyncio_ini(pytester)
    pytester.makepyfile(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        async def test_leaky():
            asyncio.create_task(asyncio.sleep(30), name="sleeper")

        @pytest.mark.asyncio
        async def test_next_test_still_gets_a_fresh_loop():
            await asyncio.sleep(0)
        """
    )
    result = run_tasks(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*task 'sleeper' coro=asyncio.tasks:sleep*created at *:5 in test_leaky",
            "*would otherwise have been cancelled silently by pytest-asyncio*",
            "cleanup: task cancelled (by pytest-asyncio, as it closed the event loop)",
        ]
    )


@pytest.mark.parametrize("mode", MODES)
def test_clean_async_test_passes(pytester: pytest.Pytester, mode: str) -> None:
    asyncio_ini(pytester, mode)
    pair = run_pair(
        pytester,
        lambda: run_tasks(pytester),
        test_it="""
        import asyncio, pytest

        @pytest.mark.asyncio
        async def test_awaits_its_task():
            await asyncio.create_task(asyncio.sleep(0))  # case only
            asyncio.create_task(asyncio.sleep(30), name="dropped")  # control only
        """,
    )
    # Control: the same task not awaited is the test's leak.
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(
        ["*test_awaits_its_task leaked 1 resource", "*task 'dropped'*"]
    )
    pair.case.assert_outcomes(passed=1)


def test_sync_test_that_leaves_its_own_loop_open_with_a_task_reports_both(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import asyncio

        def test_own_loop():
            loop = asyncio.new_event_loop()
            loop.create_task(asyncio.sleep(30), name="own")
        """
    )
    result = run_tasks(pytester, "-p", "no:asyncio")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*leaked 2 resources",
            "*event loop left open*created at *:4 in test_own_loop",
            "*task*'own' coro=asyncio.tasks:sleep*created at *:5 in test_own_loop",
            "cleanup: event loop closed; task cancelled",
        ]
    )


def test_open_loop_without_tasks_is_reported_as_event_loop_left_open(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import asyncio

        def test_own_loop():
            asyncio.new_event_loop()
        """
    )
    result = run_tasks(pytester, "-p", "no:asyncio")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*event loop left open*created at *:4 in test_own_loop", "cleanup: event loop closed"]
    )


DROPPED_LOOPS = """
import asyncio, gc, weakref

OLDER = [asyncio.new_event_loop()]  # no test's: leakguard leaves it alone
REFS = {"older loop": weakref.ref(OLDER[0])}

def test_drops_an_older_loop():
    OLDER.clear()

def test_leaks_a_loop_with_a_task():
    loop = asyncio.new_event_loop()
    REFS["leaked task"] = weakref.ref(loop.create_task(asyncio.sleep(30), name="left"))
    REFS["leaked loop"] = weakref.ref(loop)

def test_collects():
    gc.collect()

def test_they_are_gone():
    alive = [name for name, ref in REFS.items() if ref() is not None]
    assert alive == []
"""


def test_loops_and_tasks_the_user_dropped_are_freed_as_without_leakguard(
    pytester: pytest.Pytester,
) -> None:
    """Snapshots, findings and residue hold tasks and loops weakly. Held strongly, a loop once
    listed was listed by every later snapshot: a dropped unclosed loop (an older one, or a
    leak left in place) kept its selector and self-pipe open for the rest of the run, and its
    "unclosed event loop" warning never came."""
    pytester.makepyfile(test_it=DROPPED_LOOPS)
    # Freed, the loop warns "unclosed" and (without leakguard, nobody ran it) the task's coroutine
    # "never awaited": as without leakguard, and not what is checked here.
    quiet = ("-W", "ignore::ResourceWarning", "-W", "ignore::RuntimeWarning")
    args = ("-p", "no:asyncio", "-o", "leakguard_cleanup=false", *quiet)
    result = run_tasks(pytester, *args)
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_leaks_a_loop_with_a_task leaked 2 resources",
            "  event loop left open *",
            "  task *'left'*",
        ]
    )
    # The same file without leakguard: the yardstick.
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:leakguard", *args)
    result.assert_outcomes(passed=4)


def test_loop_closed_by_the_test_is_not_a_leak(pytester: pytest.Pytester) -> None:
    pair = run_pair(
        pytester,
        lambda: run_tasks(pytester, "-p", "no:asyncio"),
        test_it="""
        import asyncio

        def test_own_loop():
            loop = asyncio.new_event_loop()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()  # case only

        def test_asyncio_run():
            asyncio.run(asyncio.sleep(0))
        """,
    )
    assert_leaked(
        pair.control, "test_it.py::test_own_loop", ["*event loop left open*"], passed=2, errors=1
    )
    pair.case.assert_outcomes(passed=2)


def test_task_abandoned_by_asyncio_run_is_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio

        async def main():
            asyncio.create_task(asyncio.sleep(30), name="abandoned")

        def test_run():
            asyncio.run(main())
        """
    )
    result = run_tasks(pytester, "-p", "no:asyncio")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*task 'abandoned'*created at *:4 in main",
            "*would otherwise have been cancelled silently by asyncio.run*",
        ]
    )


def test_task_left_pending_under_anyio_plugin_is_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio, pytest

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        @pytest.mark.anyio
        async def test_leaky():
            asyncio.create_task(asyncio.sleep(30), name="anyio-sleeper")

        @pytest.mark.anyio
        async def test_clean():
            await asyncio.sleep(0)
        """
    )
    result = run_tasks(pytester, "-p", "no:asyncio")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_leaky leaked 1 resource",
            "*task 'anyio-sleeper'*created at *:9 in test_leaky",
            "*would otherwise have been cancelled silently by anyio's pytest plugin*",
        ]
    )


def test_task_created_by_module_scoped_async_fixture_belongs_to_the_fixture(
    pytester: pytest.Pytester,
) -> None:
    asyncio_ini(pytester)
    pair = run_pair(
        pytester,
        lambda: run_tasks(pytester),
        test_it="""
        import asyncio, pytest, pytest_asyncio

        @pytest_asyncio.fixture(scope="module", loop_scope="module")
        async def background():
            yield asyncio.create_task(asyncio.sleep(30), name="fixture-task")  # case only
            yield None  # control only

        @pytest.mark.asyncio(loop_scope="module")
        async def test_one(background):
            asyncio.create_task(asyncio.sleep(30), name="fixture-task")  # control only
            await asyncio.sleep(0)

        @pytest.mark.asyncio(loop_scope="module")
        async def test_two(background):
            await asyncio.sleep(0)
        """,
    )
    # Control: the same task created by the first test is that test's.
    pair.control.assert_outcomes(passed=2, errors=1)
    pair.control.stdout.fnmatch_lines(
        ["*test_one leaked 1 resource", "*task 'fixture-task'*created at *:* in test_one"]
    )
    pair.case.assert_outcomes(passed=2, errors=1)
    pair.case.stdout.fnmatch_lines(
        [
            "*fixture 'background' (module-scoped*) leaked 1 resource",
            "*task 'fixture-task'*created at *:5 in background",
        ]
    )
    pair.case.stdout.no_fnmatch_line("*test_one leaked*")


def test_task_a_fixture_cancels_in_its_teardown_is_not_a_leak(pytester: pytest.Pytester) -> None:
    asyncio_ini(pytester)
    pair = run_pair(
        pytester,
        lambda: run_tasks(pytester),
        test_it="""
        import asyncio, pytest, pytest_asyncio

        @pytest_asyncio.fixture(scope="module", loop_scope="session")
        async def background():
            task = asyncio.create_task(asyncio.sleep(30), name="background")
            yield task
            # Not awaited: the task ends at the loop's next turn.
            task.cancel()  # case only

        @pytest.mark.asyncio(loop_scope="session")
        async def test_one(background):
            await asyncio.sleep(0)
        """,
    )
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(
        ["*fixture 'background' (module-scoped*) leaked 1 resource", "*task 'background'*"]
    )
    pair.case.assert_outcomes(passed=1)


@pytest.mark.parametrize("scope", ["function", "module"])
def test_task_that_finishes_within_grace_is_not_a_leak(
    pytester: pytest.Pytester, scope: str
) -> None:
    asyncio_ini(pytester)
    # 0.3 s of work: within the case's 2 s grace, past the control's 0.05 s.
    pair = run_pair(
        pytester,
        lambda *args: run_tasks(pytester, *args),
        case_args=("-o", "leakguard_grace=2"),
        test_it=f"""
        import asyncio, pytest

        @pytest.mark.asyncio(loop_scope="{scope}")
        async def test_fire_and_forget():
            asyncio.create_task(asyncio.sleep(0.3), name="short")
        """,
    )
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(["*task 'short'*"])
    pair.case.assert_outcomes(passed=1)


def test_task_on_an_idle_loop_of_a_sync_test_gets_its_grace_period(
    pytester: pytest.Pytester,
) -> None:
    # 0.3 s of work on a loop nobody runs: within the case's 2 s grace, past the control's.
    pair = run_pair(
        pytester,
        lambda *args: run_tasks(pytester, "-p", "no:asyncio", *args),
        case_args=("-o", "leakguard_grace=2"),
        test_it="""
        import asyncio

        LOOP = asyncio.new_event_loop()  # made at import: not the test's loop

        def test_schedules_short_work():
            LOOP.create_task(asyncio.sleep(0.3), name="short")

        def test_zz_close_the_loop():
            LOOP.close()
        """,
    )
    pair.control.assert_outcomes(passed=2, errors=1)
    pair.control.stdout.fnmatch_lines(
        ["*test_schedules_short_work leaked 1 resource", "*task 'short'*"]
    )
    pair.case.assert_outcomes(passed=2)


def test_task_that_ignores_cancellation_is_reported_as_still_pending(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import asyncio

        async def stubborn():
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                await asyncio.sleep(30)  # ignores the first cancel

        def test_own_loop():
            loop = asyncio.new_event_loop()
            loop.create_task(stubborn(), name="stubborn")
        """
    )
    result = run_tasks(pytester, "-p", "no:asyncio")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*task*'stubborn' coro=test_task_that_ignores_cancellation*:stubborn*",
            "cleanup: event loop closed*; task still pending after cancel (it ignored cancellation)",
        ]
    )


# --- how it reports ------------------------------------------------------------------------------
def test_ignore_pattern_matches_the_task_description(pytester: pytest.Pytester) -> None:
    asyncio_ini(pytester)
    pair = run_pair(
        pytester,
        lambda *args: run_tasks(pytester, *args),
        case_args=("-o", "leakguard_ignore=tasks: 'known-poller' coro=asyncio"),
        test_it="""
        import asyncio, pytest

        @pytest.mark.asyncio(loop_scope="module")
        async def test_leaky():
            asyncio.create_task(asyncio.sleep(30), name="known-poller")
            asyncio.create_task(asyncio.sleep(30), name="other-poller")  # a near miss
        """,
    )
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(["*test_leaky leaked 2 resources"])
    pair.case.assert_outcomes(passed=1, errors=1)
    pair.case.stdout.fnmatch_lines(["*test_leaky leaked 1 resource", "*task 'other-poller'*"])
    pair.case.stdout.no_fnmatch_line("*known-poller*")


def test_report_says_where_the_task_is_suspended(pytester: pytest.Pytester) -> None:
    asyncio_ini(pytester)
    pytester.makepyfile(
        """
        import asyncio, pytest

        async def poll_forever():
            while True:
                await asyncio.sleep(1)

        @pytest.mark.asyncio(loop_scope="module")
        async def test_poller():
            asyncio.create_task(poll_forever(), name="poller")
            await asyncio.sleep(0)
        """
    )
    result = run_tasks(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*task 'poller' coro=test_report_says_where_the_task_is_suspended:poll_forever"
            "*created at *:9 in test_poller",
            "*suspended at *:5 in poll_forever",
        ]
    )


# --- bad input and faults ------------------------------------------------------------------------
def test_task_on_a_loop_the_test_closed_is_reported_as_unable_to_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import asyncio

        KEEP = []

        def test_closes_loop_under_its_task():
            loop = asyncio.new_event_loop()
            KEEP.append(loop.create_task(asyncio.sleep(30), name="orphan"))
            loop.close()
        """
    )
    # In a process of its own: the orphan's coroutine never starts, and freed in this one (by
    # whichever later collection meets the inner module's KEEP) it warned "never awaited" in
    # some unrelated test of this suite, or at its very end (CI, 3.13).
    result = run_tasks(pytester, "-p", "no:asyncio", subprocess=True)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*task 'orphan'*",
            "*its event loop is closed: it can never run again",
            "cleanup: task not cancelled: its event loop is closed*",
        ]
    )


def test_loop_running_in_another_thread_is_stopped_and_closed(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import asyncio, threading

        def test_background_loop():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="loop-thread", daemon=True).start()
            asyncio.run_coroutine_threadsafe(asyncio.sleep(30), loop)
        """
    )
    result = run_tasks(pytester, "-p", "no:asyncio")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*event loop left open*created at *:4 in test_background_loop",
            "*its event loop is running in thread 'loop-thread'",
            "cleanup: event loop stopped (it ran in thread 'loop-thread') and closed; task cancelled",
        ]
    )


def test_task_whose_repr_and_name_raise_is_still_described(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio

        class Broken(asyncio.Task):
            def __repr__(self):
                raise RuntimeError("no repr")

            def get_name(self):
                raise RuntimeError("no name")

        def test_broken_task():
            loop = asyncio.new_event_loop()
            loop.set_task_factory(lambda loop, coro, **kw: Broken(coro, loop=loop, **kw))
            loop.create_task(asyncio.sleep(30))
        """
    )
    result = run_tasks(pytester, "-p", "no:asyncio")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*task*<unnamed Broken> coro=asyncio.tasks:sleep*"])
    result.stdout.no_fnmatch_line("*internal problem*")


# --- outside pytest ------------------------------------------------------------------------------
def test_check_block_reports_and_cancels_a_task_left_on_an_idle_loop() -> None:
    loop = asyncio.new_event_loop()  # made before the block: only the task is the block's
    try:
        with (
            pytest.raises(leakguard.LeakError) as info,
            leakguard.check(trackers=["tasks"], grace=0.05),
        ):
            task = loop.create_task(asyncio.sleep(30), name="in-block")
        assert "task 'in-block' coro=asyncio.tasks:sleep" in str(info.value)
        assert "cleanup: task cancelled" in str(info.value)
        assert task.cancelled()
    finally:
        loop.close()

"""The processes tracker: children, grandchildren, orphans and zombies a test leaves behind,
how they are reported and stopped, and what is never touched.

Every inner run is a real pytest in a subprocess (a leaked process must not hit this one).
Inner tests write each pid they make to a file; the `spawned` fixture checks them from outside
and kills whatever survived, even when an assertion failed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.support.outcomes import assert_leaked
from tests.support.pairs import run_pair
from tests.support.processes import Spawned, assert_leaked_and_stopped, run_processes


@pytest.fixture
def unrelated() -> Iterator[subprocess.Popen[bytes]]:
    """A ``sleep 30`` started by this outer test: not the inner run's to touch."""
    proc = subprocess.Popen(["sleep", "30"])
    yield proc
    proc.kill()
    proc.wait()


# --- what it catches -----------------------------------------------------------------------
def test_popen_left_running_is_reported_and_terminated(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pytester.makepyfile(
        test_leaky="""
        import subprocess, procrec
        def test_leaky():
            procrec.record(subprocess.Popen(["sleep", "30"]).pid)
        """
    )
    assert_leaked_and_stopped(
        run_processes(pytester),
        spawned,
        [
            "*ERROR at teardown of test_leaky*",
            "leakguard: test_leaky.py::test_leaky leaked 1 resource",
            "  process * 'sleep 30' (child of test)   spawned at test_leaky.py:3 in test_leaky",
            "cleanup: process * terminated",
        ],
    )


def test_shell_and_its_grandchild_are_both_reported_and_stopped(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pytester.makepyfile(
        test_leaky="""
        import subprocess, time, procrec
        def test_shell():
            shell = subprocess.Popen(["sh", "-c", "sleep 30 & echo $!; wait"],
                                     stdout=subprocess.PIPE, text=True)
            procrec.record(shell.pid)
            procrec.record(int(shell.stdout.readline()), execs="sleep")
        """
    )
    result = run_processes(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_leaky.py::test_shell leaked 2 resources",
            "  process * 'sh -c sleep 30 & echo $!; wait' (child of test)"
            "   spawned at test_leaky.py:3 in test_shell",
            "  process * 'sleep 30' (grandchild)*via a child spawned at test_leaky.py:3 in test_shell",
            "cleanup: process * terminated (pipes closed); process * terminated",
        ]
    )
    assert len(spawned.recorded()) == 2
    assert spawned.survivors() == []


def test_orphan_whose_parent_exited_is_found_by_the_run_mark(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pytester.makepyfile(
        test_leaky="""
        import subprocess, procrec
        def test_daemonizes():
            out = subprocess.run(["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"],
                                 capture_output=True, text=True, check=True).stdout
            procrec.record(int(out), execs="sleep")
        """
    )
    assert_leaked_and_stopped(
        run_processes(pytester),
        spawned,
        [
            "leakguard: test_leaky.py::test_daemonizes leaked 1 resource",
            "  process * 'sleep 30' (orphan)   via a child spawned at test_leaky.py:3 in test_daemonizes",
            "cleanup: process * terminated",
        ],
    )


def test_double_forked_daemon_in_its_own_session_is_found(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pytester.makepyfile(
        test_leaky="""
        import os, time, procrec
        def test_daemon():
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.setsid()
                if os.fork() == 0:
                    os.write(w, str(os.getpid()).encode())
                    time.sleep(30)
                os._exit(0)
            os.waitpid(pid, 0)
            procrec.record(int(os.read(r, 32)))
        """
    )
    assert_leaked_and_stopped(
        run_processes(pytester),
        spawned,
        [
            "  process * 'fork of *' (orphan)   via a child spawned at test_leaky.py:4 in test_daemon",
            "cleanup: process * terminated",
        ],
    )


def test_zombie_never_waited_for_is_reported_and_reaped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_leaky="""
        import os, time
        def test_forks():
            if os.fork() == 0:
                os._exit(0)
            time.sleep(0.1)
        """
    )
    result = run_processes(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  zombie * 'fork of *' (child of test)   spawned at test_leaky.py:3 in test_forks",
            "cleanup: zombie * reaped",
        ]
    )


def test_posix_spawn_child_is_reported_at_its_call(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pytester.makepyfile(
        test_leaky="""
        import os, shutil, procrec
        def test_spawns():
            sleep = shutil.which("sleep")
            procrec.record(os.posix_spawn(sleep, [sleep, "30"], os.environ))
        """
    )
    assert_leaked_and_stopped(
        run_processes(pytester),
        spawned,
        ["  process * 'sleep 30' (child of test)   spawned at test_leaky.py:4 in test_spawns"],
    )


@pytest.mark.parametrize(
    ("context", "name"), [("fork", "sleeper"), ("forkserver", "served")], ids=["fork", "forkserver"]
)
def test_multiprocessing_process_left_running_is_reported_by_name_and_its_helpers_are_not(
    pytester: pytest.Pytester, spawned: Spawned, context: str, name: str
) -> None:
    pytester.makepyfile(
        test_leaky=f"""
        import multiprocessing, time, procrec
        def test_worker():
            ctx = multiprocessing.get_context("{context}")
            p = ctx.Process(target=time.sleep, args=(30,), name="{name}")
            p.start()
            procrec.record(p.pid)
        """
    )
    # One resource: the forkserver (like the resource tracker) is a helper, not the test's.
    assert_leaked_and_stopped(
        run_processes(pytester),
        spawned,
        [
            "leakguard: test_leaky.py::test_worker leaked 1 resource",
            f"  process * 'multiprocessing {name}' (child of test)"
            "   spawned at test_leaky.py:5 in test_worker",
            "cleanup: process * terminated",
        ],
    )


def test_asyncio_subprocess_left_running_is_reported(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    # Kept: dropped, its transport is garbage, and whenever a collection frees it (on 3.13 an
    # automatic one may come before the check) its finalizer kills the child: no longer left.
    pytester.makepyfile(
        test_leaky="""
        import asyncio, procrec
        KEEP = []
        def test_async():
            async def main():
                proc = await asyncio.create_subprocess_exec("sleep", "30")
                procrec.record(proc.pid)
                KEEP.append(proc)
            asyncio.run(main())
        """
    )
    assert_leaked_and_stopped(
        run_processes(pytester, "-W", "ignore::ResourceWarning"),
        spawned,
        ["  process * 'sleep 30' (child of test)   spawned at test_leaky.py:5 in *main"],
    )


def test_process_that_ignores_sigterm_is_killed(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pytester.makepyfile(
        test_leaky="""
        import signal, subprocess, sys, procrec
        CODE = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(30)"
        def test_stubborn():
            p = subprocess.Popen([sys.executable, "-c", CODE], stdout=subprocess.PIPE)
            procrec.record(p.pid)
            p.stdout.readline()  # SIGTERM is ignored from here on
        """
    )
    assert_leaked_and_stopped(
        run_processes(pytester),
        spawned,
        ["cleanup: process * killed (ignored SIGTERM) (pipes closed)"],
    )


# --- what it lets go -----------------------------------------------------------------------
def test_child_that_exits_within_grace_is_not_a_leak(pytester: pytest.Pytester) -> None:
    # 0.2 s of work against a 2 s grace: the poll with back-off sees it exit (and its Popen,
    # dropped by the test, would have reaped it at the next Popen(): so does leakguard).
    # Against the control's 0.05 s it is still running: a leak.
    pair = run_pair(
        pytester,
        lambda *args: run_processes(pytester, "-W", "ignore::ResourceWarning", *args),
        case_args=("-o", "leakguard_grace=2.0"),
        test_short="""
        import subprocess
        def test_short_lived():
            subprocess.Popen(["sleep", "0.2"])
        """,
    )
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(["  process * 'sleep 0.2' (child of test)*"])
    pair.case.assert_outcomes(passed=1)


def test_waited_subprocess_is_not_a_leak(pytester: pytest.Pytester) -> None:
    # The control starts the same programs without waiting for them (kept, so that no later
    # Popen reaps them): each is the test's leak.
    pair = run_pair(
        pytester,
        lambda: run_processes(pytester),
        test_clean="""
        import os, subprocess, time
        KEEP = []
        def test_run():
            subprocess.run(["sleep", "0.3"], check=True)  # case only
            KEEP.append(subprocess.Popen(["sleep", "0.3"]))  # control only
        def test_system():
            assert os.system("sleep 0.3") == 0  # case only
            KEEP.append(subprocess.Popen("sleep 0.3", shell=True))  # control only
        def test_fork_and_wait():
            pid = os.fork()
            if pid == 0:
                time.sleep(0.3)
                os._exit(0)
            os.waitpid(pid, 0)  # case only
        """,
    )
    pair.control.assert_outcomes(passed=3, errors=3)
    pair.control.stdout.fnmatch_lines(
        [
            "leakguard: test_clean.py::test_run leaked 1 resource",
            "leakguard: test_clean.py::test_system leaked *",  # the shell, and its sleep if it forked
            "leakguard: test_clean.py::test_fork_and_wait leaked 1 resource",
        ]
    )
    pair.case.assert_outcomes(passed=3)


def test_server_process_of_a_module_fixture_is_not_blamed_on_the_tests(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    # The control makes the same fixture function-scoped and never stops its server: the
    # first test's leak. The case stops it at the end of its longer scope.
    pair = run_pair(
        pytester,
        lambda: run_processes(pytester),
        conftest="""
        import subprocess, pytest, procrec

        @pytest.fixture(scope="module")  # case only
        @pytest.fixture  # control only
        def server():
            proc = subprocess.Popen(["sleep", "30"])
            procrec.record(proc.pid)
            yield proc
            proc.terminate()  # case only
            proc.wait()  # case only
        """,
        test_it="""
        def test_first(server):
            assert server.poll() is None

        def test_second(server):
            assert server.poll() is None
        """,
    )
    assert_leaked(
        pair.control,
        "test_it.py::test_first",
        ["  process * 'sleep 30' (child of test)   spawned at conftest.py:* in server"],
        passed=2,
        errors=2,
    )
    pair.case.assert_outcomes(passed=2)
    assert spawned.survivors() == []


def test_module_fixture_that_never_stops_its_server_is_reported_by_name(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pytester.makeconftest(
        """
        import subprocess, pytest, procrec

        @pytest.fixture(scope="module")
        def server():
            proc = subprocess.Popen(["sleep", "30"])
            procrec.record(proc.pid)
            yield proc
        """
    )
    pytester.makepyfile(
        test_it="""
        def test_first(server):
            pass

        def test_last(server):
            pass
        """
    )
    result = run_processes(pytester)
    assert_leaked(
        result,
        "fixture 'server' (module-scoped)",
        ["  process * 'sleep 30' (child of test)   spawned at conftest.py:5 in server"],
        passed=2,
        errors=1,
    )
    result.stdout.no_fnmatch_line("leakguard: test_it.py::test_first leaked*")
    assert spawned.survivors() == []


def test_multiprocessing_resource_tracker_is_not_blamed(pytester: pytest.Pytester) -> None:
    pair = run_pair(
        pytester,
        lambda: run_processes(pytester),
        test_it="""
        import multiprocessing, time

        def test_spawn_context_starts_the_resource_tracker():
            ctx = multiprocessing.get_context("spawn")
            p = ctx.Process(target=time.sleep, args=(0.3,))
            p.start()
            p.join()  # case only
            from multiprocessing import resource_tracker
            assert resource_tracker._resource_tracker._pid is not None
        """,
    )
    # Control: the child left running is the test's one leak; the resource tracker it started
    # is still not blamed.
    assert_leaked(
        pair.control,
        "test_it.py::test_spawn_context_starts_the_resource_tracker",
        ["  process * (child of test)*"],
    )
    pair.control.stdout.no_fnmatch_line("*resource_tracker*(child*")
    pair.case.assert_outcomes(passed=1)


def test_ignore_pattern_matches_the_process_description(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pair = run_pair(
        pytester,
        lambda *args: run_processes(pytester, *args),
        case_args=("-o", r"leakguard_ignore=processes: 'sleep \d+' \(child"),
        test_it="""
        import subprocess, procrec
        def test_keeps_sleeping():
            procrec.record(subprocess.Popen(["sleep", "30"]).pid)
            procrec.record(subprocess.Popen(["sleep", "30.5"]).pid)  # a near miss
        """,
    )
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(
        ["leakguard: test_it.py::test_keeps_sleeping leaked 2 resources"]
    )
    assert_leaked(
        pair.case, "test_it.py::test_keeps_sleeping", ["  process * 'sleep 30.5' (child of test)*"]
    )
    # Ignored means left alone (the fixture kills it); the near miss was stopped.
    assert [p.cmdline() for p in spawned.survivors()] == [["sleep", "30"]]


# --- safety ----------------------------------------------------------------------------------
def test_unrelated_process_with_the_same_command_line_survives_cleanup(
    pytester: pytest.Pytester, spawned: Spawned, unrelated: subprocess.Popen[bytes]
) -> None:
    pytester.makepyfile(
        test_leaky="""
        import subprocess, procrec
        def test_leaky():
            procrec.record(subprocess.Popen(["sleep", "30"]).pid)
        """
    )
    result = run_processes(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["cleanup: process * terminated"])
    result.stdout.no_fnmatch_line(f"*process {unrelated.pid} *")
    assert spawned.survivors() == []
    assert unrelated.poll() is None


def test_cleanup_leaves_no_process_behind(pytester: pytest.Pytester, spawned: Spawned) -> None:
    pytester.makepyfile(
        test_leaky="""
        import multiprocessing, os, subprocess, time, procrec

        def test_everything():
            shell = subprocess.Popen(["sh", "-c", "sleep 30 & echo $!; sleep 30"],
                                     stdout=subprocess.PIPE, text=True)
            procrec.record(shell.pid)
            procrec.record(int(shell.stdout.readline()), execs="sleep")
            out = subprocess.run(["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"],
                                 capture_output=True, text=True).stdout
            procrec.record(int(out), execs="sleep")
            p = multiprocessing.get_context("fork").Process(target=time.sleep, args=(30,))
            p.start()
            procrec.record(p.pid)
            procrec.record(subprocess.Popen(["sleep", "30"], start_new_session=True).pid)

        def test_after():
            pass
        """
    )
    result = run_processes(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["leakguard: test_leaky.py::test_everything leaked 6 resources"])
    assert len(spawned.recorded()) == 5  # all but the shell's foreground sleep
    assert spawned.survivors() == []

"""Whose process is it: a process is the test's only if the test's lineage spawned it (or it
descends, through the test's own processes, from such a spawn); anything else is left alone,
and what cannot be proven the test's is never signalled (issue 9, items 6, 7 and 11).

Each "not the test's" case carries its control in the same inner run: the same thing done by
the test itself is reported and stopped.
"""

from __future__ import annotations

import pytest

from tests.support.processes import Spawned, run_processes


def test_child_of_a_session_fixtures_thread_is_not_the_tests(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pytester.makeconftest(
        """
        import subprocess, threading, pytest

        @pytest.fixture(scope="session")
        def poller():
            codes, stop = [], threading.Event()

            def loop():
                while not stop.is_set():
                    codes.append(subprocess.run(["sleep", "0.4"]).returncode)

            thread = threading.Thread(target=loop, daemon=True)
            thread.start()
            yield codes
            stop.set()
            thread.join()
            assert codes and set(codes) == {0}, f"the poller's children were hit: {codes}"
        """
    )
    pytester.makepyfile(
        test_it="""
        import subprocess, threading, time, procrec

        RESULTS = []

        def test_uses_the_poller(poller):
            time.sleep(0.5)  # one of the fixture's `sleep 0.4` runs while the test ends

        def test_its_own_thread_spawns():
            started = threading.Event()

            def work():
                child = subprocess.Popen(["sleep", "30"])
                procrec.record(child.pid)
                started.set()
                RESULTS.append(child.wait())

            threading.Thread(target=work, daemon=True).start()
            started.wait(10)

        def test_its_child_was_terminated():
            deadline = time.monotonic() + 5
            while not RESULTS and time.monotonic() < deadline:
                time.sleep(0.01)
            assert RESULTS == [-15]
        """
    )
    result = run_processes(pytester)
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_its_own_thread_spawns leaked 1 resource",
            "  process * 'sleep 30' (child of test)*",
            "cleanup: process * terminated",
        ]
    )
    result.stdout.no_fnmatch_line("*test_uses_the_poller leaked*")
    result.stdout.no_fnmatch_line("*'sleep 0.4'*")
    assert spawned.survivors() == []


SERVER = (
    "import subprocess, time; time.sleep(0.3); "
    "w = subprocess.Popen(['sleep', '30']); print(w.pid, flush=True); time.sleep(30)"
)


def test_worker_a_session_server_starts_after_its_fixture_returned_is_not_the_tests(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pytester.makepyfile(
        server=f"""
        import subprocess, sys, procrec

        def start():
            # A server that starts its worker 0.3 s after it was launched.
            proc = subprocess.Popen([sys.executable, "-c", {SERVER!r}], stdout=subprocess.PIPE,
                                    text=True, start_new_session=True)
            procrec.record(proc.pid)
            return proc

        def worker_of(proc):
            return procrec.record(int(proc.stdout.readline()), execs="sleep")
        """
    )
    pytester.makeconftest(
        """
        import os, signal, pytest, server as srv

        @pytest.fixture(scope="session")
        def server():
            proc = srv.start()
            yield proc
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            proc.stdout.close()
        """
    )
    pytester.makepyfile(
        test_it="""
        import server as srv

        def test_first(server):
            srv.worker_of(server)  # started during this test, by the fixture's server

        def test_own_server():
            srv.worker_of(srv.start())
        """
    )
    result = run_processes(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_own_server leaked 2 resources",
            "  process * (child of test)*",
            "  process * 'sleep 30' (grandchild)*",
            "cleanup: process * terminated*; process * terminated*",
        ]
    )
    result.stdout.no_fnmatch_line("*test_first leaked*")
    assert spawned.survivors() == []


def test_marked_process_outside_the_tree_without_proof_is_reported_but_not_signalled(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pytester.makepyfile(
        test_it="""
        import os, subprocess, procrec

        def test_system_daemon(tmp_path):
            # os.system's shell carries the run's mark and nothing that ties it to this test.
            os.system(f"sleep 30 >/dev/null 2>&1 & echo $! > {tmp_path / 'pid'}")
            procrec.record(int((tmp_path / "pid").read_text()), execs="sleep")

        def test_popen_daemon():
            out = subprocess.run(["sh", "-c", "sleep 31 >/dev/null 2>&1 & echo $!"],
                                 capture_output=True, text=True, check=True).stdout
            procrec.record(int(out), execs="sleep")
        """
    )
    result = run_processes(pytester)
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_system_daemon leaked 1 resource",
            "  process * 'sleep 30' (orphan)*",
            "cleanup: process * left running (not provably ours: found by the run's mark only*",
            "leakguard: test_it.py::test_popen_daemon leaked 1 resource",
            "  process * 'sleep 31' (orphan)*",
            "cleanup: process * terminated",
        ]
    )
    survivors = spawned.survivors()
    assert [p.cmdline() for p in survivors] == [["sleep", "30"]]


def test_a_file_on_the_report_pipes_number_is_never_trusted(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pytester.makepyfile(
        test_it="""
        import os, subprocess, time, procrec

        KEEP = []

        def test_closes_the_report_pipe(tmp_path):
            pipe = subprocess.Popen._execute_child._leakguard_spawn_log.pipe
            # A process born during the test, outside its tree and without the run's mark.
            out = subprocess.run(["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"],
                                 env={"PATH": os.environ["PATH"]},
                                 capture_output=True, text=True, check=True).stdout
            stranger = procrec.record(int(out), execs="sleep")
            with open(f"/proc/{stranger}/stat") as f:
                start = f.read().rpartition(")")[2].split()[19]
            planted = tmp_path / "planted"
            planted.write_text(f"{stranger} {start}\\n")
            os.close(pipe.read_fd)
            fd = os.open(planted, os.O_RDONLY)
            assert fd == pipe.read_fd
            KEEP.append(fd)

        def test_double_forked_daemon_is_still_found():
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
            os.close(r)
            os.close(w)
        """
    )
    result = run_processes(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_double_forked_daemon_is_still_found leaked 1 resource",
            "  process * 'fork of *' (orphan)*",
            "cleanup: process * terminated",
        ]
    )
    result.stdout.no_fnmatch_line("*test_closes_the_report_pipe leaked*")
    survivors = spawned.survivors()
    assert [p.cmdline() for p in survivors] == [["sleep", "30"]]


def test_daemon_a_session_fixtures_thread_starts_during_a_test_is_not_the_tests(
    pytester: pytest.Pytester, spawned: Spawned
) -> None:
    pytester.makeconftest(
        """
        import os, queue, signal, subprocess, threading, pytest, procrec

        DAEMON = ["sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"]

        @pytest.fixture(scope="session")
        def daemonizer():
            asks, pids = queue.Queue(), queue.Queue()

            def serve():
                while asks.get():
                    out = subprocess.run(DAEMON, capture_output=True, text=True).stdout
                    pids.put(procrec.record(int(out), execs="sleep"))

            thread = threading.Thread(target=serve, daemon=True)
            thread.start()

            def start():
                asks.put(True)
                return pids.get(timeout=10)

            started = []
            yield lambda: started.append(start())
            asks.put(False)
            for pid in started:
                os.kill(pid, signal.SIGTERM)
        """
    )
    pytester.makepyfile(
        test_it="""
        import subprocess, procrec
        from conftest import DAEMON

        def test_asks_the_fixture(daemonizer):
            daemonizer()  # the fixture's thread starts a daemon, during this test

        def test_starts_its_own():
            out = subprocess.run(DAEMON, capture_output=True, text=True).stdout
            procrec.record(int(out), execs="sleep")
        """
    )
    result = run_processes(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leakguard: test_it.py::test_starts_its_own leaked 1 resource",
            "  process * 'sleep 30' (orphan)*",
            "cleanup: process * terminated",
        ]
    )
    result.stdout.no_fnmatch_line("*test_asks_the_fixture leaked*")
    assert len(spawned.recorded()) == 2
    assert spawned.survivors() == []

"""Threads are the test's only when the test's code started them, from an owner no older than
the test (issue 9: class-level servers, fixture pools, library caches, instrumentation)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import RunLeakguard
from tests.support.outcomes import assert_leaked

# A server started by setup_class: its accept loop starts one handler thread per connection,
# which keeps the connection ~1 s after the client closed (as keep-alive servers do).
CLASS_SERVER = """
import socket, threading, time

def _handle(conn):
    with conn:
        conn.recv(16)
        time.sleep(1.0)

def _serve(listener):
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_handle, args=(conn,), name="handler", daemon=True).start()

def start_server():
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_serve, args=(listener,), name="acceptor", daemon=True).start()
    return listener

def talk(port):
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(b"hi")
"""


def test_handler_threads_of_a_class_level_server_are_not_the_tests(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(server=CLASS_SERVER)
    pytester.makepyfile(
        test_it="""
        import socket, threading, server

        class TestAgainstServer:
            @classmethod
            def setup_class(cls):
                cls.listener = server.start_server()

            @classmethod
            def teardown_class(cls):
                cls.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
                cls.listener.close()
                for t in threading.enumerate():
                    if t.name == "acceptor":
                        t.join(5)

            def test_one(self):
                server.talk(self.listener.getsockname()[1])

            def test_two(self):
                server.talk(self.listener.getsockname()[1])
        """
    )
    result = run_leakguard("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*thread 'handler'*")

    # Control: the test starts the same server itself; its acceptor (and what it starts) is its.
    pytester.makepyfile(
        test_it="""
        import server

        def test_own_server():
            listener = server.start_server()
            server.talk(listener.getsockname()[1])
        """
    )
    result = run_leakguard()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["  thread 'acceptor' (daemon)*started at server.py:*"])


POOL_FIXTURE = """
import threading, pytest
from concurrent.futures import ThreadPoolExecutor

@pytest.fixture(scope="session")
def pool():
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="fixture-pool") as pool:
        yield pool
"""


def test_a_session_fixture_pool_growing_during_a_test_is_not_the_tests(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makeconftest(POOL_FIXTURE)
    pytester.makepyfile(
        test_it="""
        import threading

        def test_grows_the_pool(pool):
            # Two jobs at once: both workers start now, on this test's submit() calls.
            both = threading.Barrier(3)
            futures = [pool.submit(both.wait, 2) for _ in range(2)]
            both.wait(2)
            [f.result() for f in futures]

        def test_uses_the_pool_afterwards(pool):
            assert pool.submit(lambda: 42).result() == 42
        """
    )
    result = run_leakguard("-p", "no:randomly")
    result.assert_outcomes(passed=2)

    # Control: the same pool made by the test itself is the test's leak, and is shut down.
    pytester.makepyfile(
        test_it="""
        import threading
        from concurrent.futures import ThreadPoolExecutor
        KEEP = []

        def test_grows_its_own_pool():
            pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="own-pool")
            KEEP.append(pool)
            pool.submit(lambda: None).result()
        """
    )
    result = run_leakguard()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["cleanup: ThreadPoolExecutor shut down, worker 'own-pool_0' stopped"]
    )


# A library (it lives in a site-packages folder) that keeps idle worker threads in a
# module-level cache for reuse, like trio's thread cache.
FAKE_LIBRARY = """
import threading

_IDLE = []

def run_in_worker(fn):
    if not _IDLE:
        wake = threading.Event()
        t = threading.Thread(target=wake.wait, args=(5,), name="Cache thread 0", daemon=True)
        t.start()
        _IDLE.append((t, wake))
    fn()
"""


CACHE_USERS = """
import cachelib

def test_first_user():
    cachelib.run_in_worker(lambda: None)

def test_second_user():
    cachelib.run_in_worker(lambda: None)
"""


def test_threads_kept_by_a_librarys_module_cache_are_named_not_failed(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(test_it=CACHE_USERS)
    # Control: the same code under the rootdir is the user's own module global: the first test
    # that fills it leaked the thread.
    pytester.makepyfile(cachelib=FAKE_LIBRARY)
    control = run_leakguard("-p", "no:randomly")
    assert_leaked(
        control,
        "test_it.py::test_first_user",
        ["  thread 'Cache thread 0' (daemon)   started at cachelib.py:*"],
        passed=2,
        errors=1,
    )
    control.stdout.no_fnmatch_line("*process-wide cache*")

    # The case: the same module in a site-packages folder is a library's process-wide cache.
    (pytester.path / "cachelib.py").unlink()
    lib = pytester.mkdir("site-packages")
    (lib / "cachelib.py").write_text(FAKE_LIBRARY)
    pytester.syspathinsert(lib)
    case = run_leakguard("-p", "no:randomly")
    case.assert_outcomes(passed=2)
    case.stdout.fnmatch_lines(
        [
            "process-wide caches of libraries (not failed, not cleaned): 1",
            "    thread 'Cache thread 0' (daemon) target=*wait kept by cachelib "
            "(process-wide cache; first made during test_it.py::test_first_user)",
        ]
    )


def test_trio_thread_cache_is_a_cache_not_a_leak(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytest.importorskip("trio")
    pytester.makepyfile(
        test_it="""
        import trio

        def test_uses_a_worker_thread():
            async def main():
                return await trio.to_thread.run_sync(lambda: 7)
            assert trio.run(main) == 7
        """
    )
    result = run_leakguard()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["    thread 'Trio thread *' (daemon) target=* kept by trio._core._thread_cache*"]
    )


TRIO_WORKERS = """
import trio
from trio._core._thread_cache import ThreadCache, start_thread_soon

def test_uses_trios_cache():
    async def main():
        return await trio.to_thread.run_sync(lambda: 7)
    assert trio.run(main) == 7

def test_uses_a_cache_of_its_own():
    done = []
    ThreadCache().start_thread_soon(lambda: 7, done.append)
    while not done:
        pass
"""


def test_an_idle_worker_of_trios_cache_is_known_at_once_without_a_wait_or_a_search(
    pytester: pytest.Pytester,
) -> None:
    # trio's idle workers wait 10 s for the next job: proven idle in trio's own module-level
    # cache, the worker is the cache's, and neither the grace wait nor the holder search (a
    # heap walk) can change that. The stats show that neither ran. In a fresh process each:
    # an idle worker of an earlier in-process run would be reused, and nothing would be new.
    pytest.importorskip("trio")
    pytester.makepyfile(test_it=TRIO_WORKERS)
    out = pytester.path / "out.json"

    def run(name: str) -> tuple[pytest.RunResult, dict[str, float]]:
        result = pytester.runpytest_subprocess(
            *("-q", "-p", "no:randomly", "--leakguard", "-o", "leakguard_trackers=threads"),
            *("-o", "leakguard_grace=0.3", "--leakguard-stats", "-o", f"leakguard_report={out}"),
            *("-k", name),
        )
        return result, json.loads(out.read_text())["stats"]["seconds"]

    case, seconds = run("trios_cache")
    case.assert_outcomes(passed=1)
    case.stdout.fnmatch_lines(
        ["    thread 'Trio thread *' (daemon) target=* kept by trio._core._thread_cache*"]
    )
    assert (seconds["grace"], seconds["owners"]) == (0.0, 0.0)

    # Control: the same worker thread in a cache of the test's own is not proven the library's:
    # the grace is waited and the holders are searched, and the thread is the test's leak.
    control, seconds = run("cache_of_its_own")
    control.assert_outcomes(passed=1, errors=1)
    control.stdout.fnmatch_lines(["*thread 'Trio thread *' (daemon)*"])
    assert seconds["grace"] > 0.0
    assert seconds["owners"] > 0.0


def test_a_growing_library_cache_is_a_leak_past_its_bound(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    lib = pytester.mkdir("site-packages")
    (lib / "growlib.py").write_text(
        "import threading\n"
        "_ALL = []\n"
        "def add():\n"
        "    wake = threading.Event()\n"
        "    t = threading.Thread(target=wake.wait, args=(15,), daemon=True, name='grow')\n"
        "    t.start()\n"
        "    _ALL.append((t, wake))\n"
    )
    pytester.syspathinsert(lib)
    pytester.makepyfile(
        test_it="""
        import pytest, growlib

        @pytest.mark.parametrize("n", range(20))
        def test_adds(n):
            growlib.add()
        """
    )
    result = run_leakguard("-p", "no:randomly")
    # The first 16 are a bounded cache; every one after that is the adding test's leak.
    result.assert_outcomes(passed=20, errors=4)
    result.stdout.fnmatch_lines(
        ["*process-wide cache growlib keeps growing (17 alive): left as is, reported as a leak"]
    )


def test_starting_a_thread_makes_no_file_system_call(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    # blockbuster-style suites fail any blocking call made inside an event loop; recording
    # where a thread was started must not resolve paths on the caller's thread.
    pytester.makepyfile(
        starter="""
        import threading
        def start():
            t = threading.Thread(target=lambda: None)
            t.start()
            t.join()
        """
    )
    pytester.makepyfile(
        test_it="""
        import os, os.path, starter

        def test_start_in_a_guarded_loop(monkeypatch):
            def blocking(*args, **kwargs):
                raise AssertionError("blocking call")
            for name in ("stat", "lstat", "readlink"):
                monkeypatch.setattr(os, name, blocking)
            for name in ("realpath", "abspath"):
                monkeypatch.setattr(os.path, name, blocking)
            starter.start()
        """
    )
    run_leakguard().assert_outcomes(passed=1)

"""The threads tracker: what it reports, what it lets go, and what its cleanup can do."""

from __future__ import annotations

import pytest

from tests.conftest import RunLeakguard
from tests.support.outcomes import assert_leaked
from tests.support.pairs import run_pair


def test_leaked_non_daemon_thread_is_reported_with_name_and_start_site(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(
        test_it="""
        import threading, time

        def test_start_server():
            threading.Thread(target=time.sleep, args=(2,), name="http-worker").start()
        """
    )
    result = run_leakguard()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_start_server*",
            "leakguard: test_it.py::test_start_server leaked 1 resource",
            "  thread 'http-worker' (non-daemon)   started at test_it.py:4 in test_start_server",
            "cleanup: thread 'http-worker' still running (threads cannot be stopped)",
        ]
    )


def test_leaked_daemon_thread_is_reported_as_daemon(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(
        test_it="""
        import threading, time

        def test_daemon():
            threading.Thread(target=time.sleep, args=(2,), name="bg", daemon=True).start()
        """
    )
    result = run_leakguard()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["  thread 'bg' (daemon)   started at test_it.py:4 in test_daemon"])


def test_thread_that_ends_within_grace_is_not_a_leak(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    # 0.2 s of work: against a 1 s grace the poll with back-off sees it end; against the
    # control's 0.05 s it outlives the grace and is a leak.
    pair = run_pair(
        pytester,
        run_leakguard,
        case_args=("-o", "leakguard_grace=1.0"),
        test_it="""
        import threading, time

        def test_short_lived():
            threading.Thread(target=time.sleep, args=(0.2,), name="short").start()
        """,
    )
    assert_leaked(pair.control, "test_it.py::test_short_lived", ["  thread 'short'*"])
    pair.case.assert_outcomes(passed=1)


def test_thread_pool_left_open_is_reported_and_shut_down(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(
        test_it="""
        import threading
        from concurrent.futures import ThreadPoolExecutor

        POOLS = []

        def test_pool():
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pool")
            POOLS.append(pool)  # still referenced: its worker waits for work forever
            pool.submit(lambda: None).result()

        def test_after():
            assert not any(t.name.startswith("pool") for t in threading.enumerate())
        """
    )
    result = run_leakguard()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  thread 'pool_0' (non-daemon, ThreadPoolExecutor worker)   started at test_it.py:9 in test_pool",
            "cleanup: ThreadPoolExecutor shut down, worker 'pool_0' stopped",
        ]
    )


def test_socketserver_thread_is_shut_down_through_its_server(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(
        test_it="""
        import socketserver, threading

        def test_server():
            server = socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler)
            threading.Thread(target=server.serve_forever, name="srv", daemon=True).start()
        """
    )
    result = run_leakguard()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["cleanup: TCPServer shut down and closed, thread 'srv' stopped"])


def test_a_socketserver_polling_slowly_is_waited_for_until_it_sees_the_shutdown(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    """``serve_forever`` looks at the shutdown flag once per poll interval: cleanup waits that
    long (read from the thread's frame), not only its own timeout (0.5 s here), before saying
    whether the thread stopped. Waiting 0.5 s for a 0.5 s default raced on a busy machine."""
    pytester.makepyfile(
        test_it="""
        import socketserver, threading

        def test_server():
            server = socketserver.TCPServer(("127.0.0.1", 0), socketserver.BaseRequestHandler)
            threading.Thread(
                target=server.serve_forever, args=(1.5,), name="srv", daemon=True
            ).start()
        """
    )
    result = run_leakguard()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["cleanup: TCPServer shut down and closed, thread 'srv' stopped"])


def test_timer_left_pending_is_cancelled(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(
        test_it="""
        import threading

        def test_timer():
            threading.Timer(30, print).start()
        """
    )
    result = run_leakguard()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["cleanup: Timer * cancelled"])


def test_raw_thread_started_with_start_new_thread_is_reported(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(
        test_it="""
        import _thread, time

        def test_raw():
            _thread.start_new_thread(time.sleep, (1.5,))
        """
    )
    result = run_leakguard()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["  thread (raw _thread, ident *)   started at test_it.py:4 in test_raw"]
    )


def test_finished_thread_object_still_referenced_is_not_a_leak(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pair = run_pair(
        pytester,
        run_leakguard,
        test_it="""
        import threading
        KEEP = []

        def test_joined():
            stop = threading.Event()
            t = threading.Thread(target=stop.wait, args=(3,), name="kept")
            t.start()
            stop.set()  # case only
            t.join()  # case only
            KEEP.append(t)
        """,
    )
    # The same kept object while its thread still runs is a leak.
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(["  thread 'kept' (non-daemon)*"])
    pair.case.assert_outcomes(passed=1)


def test_thread_started_by_a_library_names_the_library_line(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(
        myapp="""
        import threading, time

        def start():
            threading.Thread(target=time.sleep, args=(2,), name="app").start()
        """,
        test_it="""
        import myapp

        def test_app():
            myapp.start()
        """,
    )
    result = run_leakguard()
    result.stdout.fnmatch_lines(["  thread 'app' (non-daemon)   started at myapp.py:4 in start"])


def test_thread_started_inside_a_library_package_is_reported_at_the_library_line(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pkg = pytester.mkpydir("vendorlib")
    pkg.joinpath("worker.py").write_text(
        "import threading, time\n\ndef spawn():\n    threading.Thread(target=time.sleep, args=(2,), daemon=True).start()\n"
    )
    pytester.makepyfile(
        test_it="from vendorlib.worker import spawn\n\ndef test_lib():\n    spawn()\n"
    )
    result = run_leakguard()
    result.stdout.fnmatch_lines(["*started at vendorlib/worker.py:4 in spawn"])


def test_asyncio_default_executor_threads_belong_to_their_loop(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pair = run_pair(
        pytester,
        lambda: run_leakguard(trackers="threads tasks"),
        test_it="""
        import asyncio, time

        LOOP = asyncio.new_event_loop()  # case only
        KEEP = []

        def test_uses_executor():
            LOOP = asyncio.new_event_loop()  # control only
            KEEP.append(LOOP)
            LOOP.run_until_complete(LOOP.run_in_executor(None, time.sleep, 0))
        """,
    )
    # A loop the test makes and keeps is the test's leak, reported as the loop; its executor's
    # worker goes with it (the loop's cleanup ends it), not as a thread of its own.
    assert_leaked(pair.control, "test_it.py::test_uses_executor", ["*event loop left open*"])
    pair.control.stdout.no_fnmatch_line("*thread 'asyncio_*")
    # A long-lived loop, as a session-scoped loop would be: its worker is the loop's.
    pair.case.assert_outcomes(passed=1)

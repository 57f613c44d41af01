"""Tasks are the test's only when the test's code created them (issue 9: a session server's
loop, running in its own thread, creates tasks while a test talks to it)."""

from __future__ import annotations

import pytest

from tests.test_tasks import asyncio_ini, run_tasks

# A server whose event loop is made inside its own thread (as uvicorn's ``Server.run`` does):
# on its first request it starts a long-lived watcher task of its own.
LOOP_THREAD = """
import asyncio, threading

class Server:
    def __init__(self):
        self.request = threading.Event()
        self.handled = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self.main(),), name="server-loop")

    async def main(self):
        while not self.stop.is_set():
            if self.request.is_set():
                self.request.clear()
                asyncio.get_running_loop().create_task(asyncio.sleep(30), name="server-watcher")
                self.handled.set()
            await asyncio.sleep(0.005)
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    def ask(self):
        self.request.set()
        assert self.handled.wait(5)

    def close(self):
        self.stop.set()
        self.thread.join(5)
"""


# The control's cleanup cancels the leaked loop's tasks, its main one included: that thread
# then ends with CancelledError, which the outer run (the inner one is in-process, and over)
# reports as an unhandled thread exception whenever the thread ends after the inner run.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_task_a_session_servers_loop_creates_during_a_test_is_not_the_tests(
    pytester: pytest.Pytester,
) -> None:
    asyncio_ini(pytester)  # pytest-asyncio, loaded in this in-process run, warns without it
    pytester.makepyfile(loops=LOOP_THREAD)
    pytester.makeconftest(
        """
        import pytest, loops

        @pytest.fixture(scope="session")
        def server():
            server = loops.Server()
            server.thread.start()
            yield server
            server.close()
        """
    )
    pytester.makepyfile(
        test_it="""
        import asyncio, loops

        def test_request(server):
            server.ask()
        """
    )
    result = run_tasks(pytester, "-o", "leakguard_trackers=tasks")
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*server-watcher*")

    # Control: the test runs the same server loop itself; the watcher it made is its leak.
    pytester.makepyfile(
        test_it="""
        import asyncio, loops
        KEEP = []

        def test_request_to_own_server():
            server = loops.Server()
            server.thread.start()
            KEEP.append(server)
            server.ask()
        """
    )
    result = run_tasks(pytester, "-o", "leakguard_trackers=tasks")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*task 'server-watcher'*"])

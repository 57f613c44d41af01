"""The server fixtures and hooks in real pytest runs: teardown, health checks and restarts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from leakguard.servers import port_is_free
from tests.server_support import running

# Every test gets a private state dir whose recorded servers are killed afterwards.
pytestmark = pytest.mark.usefixtures("state_dir")

# The servers plugin is loaded by the installed leakguard plugin, as users get it.
PLUGIN: tuple[str, ...] = ()

SESSION_CONFTEST = """
    import sys
    import pytest
    import leakguard.servers

    @pytest.fixture(scope="session")
    def api():
        port = leakguard.servers.free_port()
        cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
        with leakguard.servers.ServerProcess(cmd, port=port, ready="http", on_death={on_death!r}) as server:
            yield server
"""

KILL_MID_RUN = """
    import os, signal, time, urllib.request

    def test_a(api):
        os.kill(api.pid, signal.SIGSEGV)
        while not api.died:
            time.sleep(0.01)

    def test_b(api):
        assert urllib.request.urlopen(api.url, timeout=5).status == 200
"""


def test_server_process_fixture_stops_its_server_and_frees_the_port(
    pytester: pytest.Pytester,
) -> None:
    out = pytester.path / "seen.json"
    pytester.makepyfile(
        f"""
        import json, sys, psutil, urllib.request

        def test_serve(server_process, free_port):
            cmd = f"{{sys.executable}} -m http.server {{free_port}} --bind 127.0.0.1; echo done"
            server = server_process(cmd, port=free_port, ready="http")
            assert urllib.request.urlopen(server.url, timeout=5).status == 200
            procs = [psutil.Process(server.pid), *psutil.Process(server.pid).children()]
            seen = {{"port": free_port, "procs": [(p.pid, p.create_time()) for p in procs]}}
            with open({str(out)!r}, "w") as f:
                json.dump(seen, f)
        """
    )
    pytester.runpytest_subprocess(*PLUGIN).assert_outcomes(passed=1)
    seen = json.loads(out.read_text())
    assert len(seen["procs"]) == 2  # the shell and the server it started
    assert not any(running(pid, ctime) for pid, ctime in seen["procs"])
    assert port_is_free(seen["port"])


def test_module_servers_on_one_port_follow_each_other_without_collision(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import sys
        import pytest
        import leakguard.servers

        PORT = leakguard.servers.free_port()

        @pytest.fixture(scope="module")
        def api():
            cmd = [sys.executable, "-m", "http.server", str(PORT), "--bind", "127.0.0.1"]
            with leakguard.servers.ServerProcess(cmd, port=PORT, ready="http") as server:
                yield server
        """
    )
    body = "def test_up(api):\n    assert api.is_alive()\n"
    pytester.makepyfile(test_one=body, test_two=body, test_three=body)
    pytester.runpytest_subprocess(*PLUGIN).assert_outcomes(passed=3)


def test_session_server_killed_mid_run_is_restarted_and_the_next_test_is_told(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(SESSION_CONFTEST.format(on_death="restart"))
    pytester.makepyfile(test_x=KILL_MID_RUN)
    result = pytester.runpytest_subprocess(*PLUGIN, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*ServerRestartedWarning: server 'api' died during test_x.py::test_a (exit -11); restarted"
        ]
    )


def test_session_server_that_died_fails_later_tests_fast_when_restart_is_off(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(SESSION_CONFTEST.format(on_death="fail"))
    pytester.makepyfile(test_x=KILL_MID_RUN + "\n    def test_c(api):\n        pass\n")
    result = pytester.runpytest_subprocess(*PLUGIN)
    result.assert_outcomes(passed=1, errors=2)
    message = "server 'api' died during test_x.py::test_a (exit -11); not restarted*"
    result.stdout.fnmatch_lines(["*ERROR at setup of test_b*", f"*{message}"])
    result.stdout.fnmatch_lines(["*ERROR at setup of test_c*", f"*{message}"])


def test_a_failing_test_during_which_the_server_died_says_so(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(SESSION_CONFTEST.format(on_death="restart"))
    pytester.makepyfile(
        """
        import os, signal, time

        def test_a(api):
            os.kill(api.pid, signal.SIGKILL)
            while not api.died:
                time.sleep(0.01)
            assert False, "connection refused"
        """
    )
    result = pytester.runpytest_subprocess(*PLUGIN)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*leakguard servers*", "server 'api' died during this test (exit -9)"]
    )


CLIENT_KILLED_MID_RUN = """
    import os, signal, time, urllib.request

    def test_a(api):
        os.kill(api["pid"], signal.SIGKILL)
        while not api["server"].died:
            time.sleep(0.01)

    def test_b(api):
        assert urllib.request.urlopen(api["server"].url, timeout=5).status == 200
"""


def test_a_session_fixture_yielding_a_client_has_its_server_watched(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import sys
        import pytest
        import leakguard.servers

        @pytest.fixture(scope="session")
        def api():
            port = leakguard.servers.free_port()
            cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
            with leakguard.servers.ServerProcess(cmd, port=port, ready="http") as server:
                yield {"url": server.url, "pid": server.pid, "server": server}
        """
    )
    pytester.makepyfile(test_x=CLIENT_KILLED_MID_RUN)
    result = pytester.runpytest_subprocess(*PLUGIN)
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(
        ["*server 'api' died during test_x.py::test_a (exit -9); restarted"]
    )


@pytest.mark.parametrize("watched", [True, False], ids=["watch_server", "control"])
def test_a_server_started_on_another_thread_is_watched_through_watch_server(
    pytester: pytest.Pytester, watched: bool
) -> None:
    pytester.makeconftest(
        f"""
        import sys
        from concurrent.futures import ThreadPoolExecutor
        import pytest
        import leakguard.servers

        @pytest.fixture(scope="session")
        def api(request):
            port = leakguard.servers.free_port()
            cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
            server = leakguard.servers.ServerProcess(cmd, port=port, ready="http")
            with ThreadPoolExecutor(1) as pool:
                pool.submit(server.start).result()
            if {watched!r}:
                leakguard.servers.watch_server(request, server)
            yield {{"url": server.url, "pid": server.pid, "server": server}}
            server.stop()
        """
    )
    pytester.makepyfile(test_x=CLIENT_KILLED_MID_RUN)
    result = pytester.runpytest_subprocess(*PLUGIN)
    if watched:
        result.assert_outcomes(passed=2, warnings=1)
        result.stdout.fnmatch_lines(
            ["*server 'api' died during test_x.py::test_a (exit -9); restarted"]
        )
    else:
        # Nothing on that thread's stack names the fixture: the dead server stays dead.
        result.assert_outcomes(passed=1, failed=1)


def test_the_how_to_example_runs(pytester: pytest.Pytester) -> None:
    import leakguard

    if not hasattr(leakguard, "ServerProcess"):
        pytest.skip("leakguard does not re-export ServerProcess and free_port yet")
    doc = (Path(__file__).parent.parent / "docs" / "how-to" / "servers.md").read_text()
    blocks = re.findall(r"```python\n# (\S+)\n(.*?)```", doc, re.DOTALL)
    files = {name: text for name, text in blocks if "/" not in name}
    assert set(files) == {"conftest.py", "test_api.py"}
    for name, text in files.items():
        (pytester.path / name).write_text(text)
    pytester.runpytest_subprocess(*PLUGIN).assert_outcomes(passed=2)


def test_servers_raise_no_leak_reports_when_leak_checking_is_on(pytester: pytest.Pytester) -> None:
    function_server = """
        import sys, urllib.request

        def test_function_server(server_process, free_port):
            cmd = f"{sys.executable} -m http.server {free_port} --bind 127.0.0.1; echo done"
            server = server_process(cmd, port=free_port, ready="http")
            assert urllib.request.urlopen(server.url, timeout=5).status == 200
    """
    pytester.makeconftest(SESSION_CONFTEST.format(on_death="restart"))
    pytester.makepyfile(test_x=KILL_MID_RUN, test_y=function_server)
    result = pytester.runpytest_subprocess("-p", "no:asyncio", "--leakguard")
    result.assert_outcomes(passed=3, warnings=1)


def test_the_server_fixtures_come_with_leakguard_and_go_with_their_plugins_name(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        def test_port(free_port):
            assert 1024 <= free_port < 65536
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
    blocked = pytester.runpytest_subprocess("-p", "no:leakguard.servers.pytest_plugin")
    blocked.assert_outcomes(errors=1)
    blocked.stdout.fnmatch_lines(["*fixture 'free_port' not found*"])

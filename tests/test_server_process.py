"""ServerProcess with real servers: readiness, teardown of the whole group, the port, restarts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from leakguard.servers import (
    PortStillInUse,
    ServerDied,
    ServerError,
    ServerProcess,
    ServerStartTimeout,
    free_port,
    port_is_free,
    stop_stale_servers,
)
from tests.server_support import kill_if_same

# Every test gets a private state dir whose recorded servers are killed afterwards.
pytestmark = pytest.mark.usefixtures("state_dir")

# A tiny TCP server. DELAY: seconds before listening; NOISE_KB: KiB written to stdout and stderr
# first; CRASH: exit 3 at once; NEVER: never listen; NO_REUSEADDR: bind without SO_REUSEADDR.
SERVER_SCRIPT = textwrap.dedent(
    """
    import os, socket, sys, time
    port = int(sys.argv[1])
    if os.environ.get("CRASH"):
        print("boom: config file missing", file=sys.stderr, flush=True)
        sys.exit(3)
    for _ in range(int(os.environ.get("NOISE_KB", "0"))):
        sys.stdout.write("o" * 1023 + "\\n")
        sys.stderr.write("e" * 1023 + "\\n")
    sys.stdout.flush()
    if os.environ.get("NEVER"):
        print("still loading")  # no flush: PYTHONUNBUFFERED gets it into the log
        time.sleep(600)
    time.sleep(float(os.environ.get("DELAY", "0")))
    s = socket.socket()
    if not os.environ.get("NO_REUSEADDR"):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen()
    print("listening on", port, flush=True)
    while True:
        c, _ = s.accept()
        c.sendall(b"hi\\n")
        c.close()
    """
)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def gone(proc: psutil.Process) -> bool:
    """Exited (a zombie waiting for a reaper that is not us counts as exited)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "server.py"
    path.write_text(SERVER_SCRIPT)
    return path


@pytest.fixture
def port() -> int:
    return free_port()


def served(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        return conn.recv(16)


def test_slow_server_is_ready_only_once_it_answers(script: Path, port: int) -> None:
    cmd = [sys.executable, str(script), str(port)]
    with ServerProcess(cmd, port=port, env={"DELAY": "0.5"}, startup_timeout=10) as server:
        assert served(port) == b"hi\n"
        assert "listening on" in server.log_tail()


def test_http_readiness_waits_for_a_2xx_answer(tmp_path: Path, port: int) -> None:
    (tmp_path / "health").write_text("ok")
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with ServerProcess(cmd, port=port, ready="/health", cwd=tmp_path) as server:
        assert server.is_alive()


def test_http_readiness_on_a_404_times_out_naming_the_status(port: int, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    server = ServerProcess(cmd, port=port, ready="/missing", cwd=tmp_path, startup_timeout=1)
    with pytest.raises(ServerStartTimeout, match="answered 404"):
        server.start()
    assert port_is_free(port)


def test_server_that_crashes_before_ready_raises_its_exit_code_and_log_tail(
    script: Path, port: int
) -> None:
    server = ServerProcess([sys.executable, str(script), str(port)], port=port, env={"CRASH": "1"})
    with pytest.raises(ServerDied, match=r"(?s)before it was ready \(exit 3\).*boom: config"):
        server.start()
    assert server.exit_code == 3


def test_server_that_cannot_bind_a_time_wait_port_is_told_how_to_fix_it(script: Path) -> None:
    cmd = [sys.executable, str(script)]
    env = {"NO_REUSEADDR": "1"}
    held = free_port()  # left in TIME_WAIT: only SO_REUSEADDR binds over it
    server = ServerProcess([*cmd, str(held)], port=held, env=env)
    with pytest.raises(ServerDied) as info:
        server.start()
    message = str(info.value)
    assert "Address already in use" in message  # the log tail
    assert 'its log says "address already in use"' in message
    assert "bind with SO_REUSEADDR or take the port with free_port(time_wait=False)" in message
    # Control: the advice works; a crash for another reason gets no such hint.
    plain = free_port(time_wait=False)
    with ServerProcess([*cmd, str(plain)], port=plain, env=env) as fixed:
        # No request: this server closes first, and its TIME_WAIT would block its own rebind.
        assert fixed.is_alive()
    crash = ServerProcess([*cmd, str(plain)], port=plain, env={"CRASH": "1"})
    with pytest.raises(ServerDied) as other:
        crash.start()
    assert "SO_REUSEADDR" not in str(other.value)


def test_url_has_no_trailing_slash_and_needs_a_port(port: int) -> None:
    assert ServerProcess(["true"], port=port).url == f"http://127.0.0.1:{port}"
    with pytest.raises(ServerError, match="has no port, so no URL"):
        _ = ServerProcess(["true"]).url


def test_server_never_ready_raises_after_the_timeout_and_is_stopped(
    script: Path, port: int
) -> None:
    server = ServerProcess(
        [sys.executable, str(script), str(port)], port=port, env={"NEVER": "1"}, startup_timeout=0.5
    )
    with pytest.raises(ServerStartTimeout, match=r"(?s)not ready after 0.5 s.*still loading"):
        server.start()
    assert not server.is_alive()
    assert server.exit_code == -signal.SIGTERM


def test_callable_readiness_needs_consecutive_successes() -> None:
    answers = iter([True, False, True, True, True])
    calls: list[bool] = []

    def ready() -> bool:
        calls.append(next(answers))
        return calls[-1]

    with ServerProcess([sys.executable, "-c", "import time; time.sleep(60)"], ready=ready):
        assert calls == [True, False, True, True]


def test_stop_frees_the_port_held_by_a_shell_wrappers_child(script: Path, port: int) -> None:
    # Two commands: the shell must fork, so the child (not the shell) listens on the port.
    server = ServerProcess(f"{sys.executable} {script} {port}; echo server ended", port=port)
    server.start()
    child = psutil.Process(server.pid).children()[0]
    assert port in {c.laddr.port for c in child.net_connections()}
    server.stop()
    assert gone(child)
    assert port_is_free(port)


def test_server_that_ignores_sigterm_is_killed(script: Path, port: int) -> None:
    # An ignored signal stays ignored across exec: the Python child ignores TERM too.
    cmd = f"trap '' TERM; {sys.executable} {script} {port}; echo never"
    server = ServerProcess(cmd, port=port, stop_timeout=0.3).start()
    server.stop()
    assert "did not stop on SIGTERM" in server.stop_notes[0]
    assert port_is_free(port)


def test_log_heavy_server_does_not_deadlock_on_its_output(script: Path, port: int) -> None:
    # 4 MiB on each stream before listening: a pipe nobody reads would block it after 64 KiB.
    cmd = [sys.executable, str(script), str(port)]
    with ServerProcess(cmd, port=port, env={"NOISE_KB": "4096"}, startup_timeout=20) as server:
        assert served(port) == b"hi\n"
    assert server.log_path is not None
    assert server.log_path.stat().st_size > 8 * 1024 * 1024


def test_the_port_can_be_bound_again_right_after_stop(port: int, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    with ServerProcess(cmd, port=port, ready="http", cwd=tmp_path):
        pass
    assert port_is_free(port)
    with ServerProcess(cmd, port=port, ready="http", cwd=tmp_path) as again:
        assert again.is_alive()


def test_start_refuses_a_port_held_by_another_process_and_leaves_it_alone(
    script: Path, port: int
) -> None:
    with socket.create_server(("127.0.0.1", port)) as holder:
        server = ServerProcess(
            [sys.executable, str(script), str(port)], port=port, port_free_timeout=0.2
        )
        with pytest.raises(
            ServerError, match=f"port {port} is already in use .held by pid {os.getpid()}"
        ):
            server.start()
        assert holder.fileno() != -1
        assert not port_is_free(port)


def test_ensure_alive_restarts_a_dead_server_and_says_so(script: Path, port: int) -> None:
    with ServerProcess([sys.executable, str(script), str(port)], port=port, name="stub") as server:
        old_pid = server.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGSEGV)
        assert wait_until(lambda: server.died)
        message = server.ensure_alive(during="tests/test_a.py::test_b")
        assert message == "server 'stub' died during tests/test_a.py::test_b (exit -11); restarted"
        assert server.pid != old_pid
        assert served(port) == b"hi\n"
        assert "--- leakguard: server 'stub' died" in server.log_tail()


def test_port_kept_by_an_escaped_daemon_is_reported_and_the_daemon_left_alone(
    tmp_path: Path, script: Path, port: int
) -> None:
    # The server double-forks a daemon in a session of its own that keeps the port: leakguard
    # cannot prove it started it, so it reports the port instead of killing by port.
    pid_file = tmp_path / "daemon.pid"
    launcher = tmp_path / "launcher.py"
    launcher.write_text(
        textwrap.dedent(
            f"""
            import os, sys, time
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    open({str(pid_file)!r}, "w").write(str(os.getpid()))
                    os.execv(sys.executable, [sys.executable, {str(script)!r}, "{port}"])
                os._exit(0)
            time.sleep(600)
            """
        )
    )
    server = ServerProcess([sys.executable, str(launcher)], port=port, port_free_timeout=0.3)
    server.start()
    daemon_pid = int(pid_file.read_text())
    try:
        with pytest.raises(PortStillInUse, match=f"port {port} was still in use"):
            server.stop()
        assert psutil.pid_exists(daemon_pid)
    finally:
        kill_if_same(daemon_pid)
        with contextlib.suppress(psutil.Error):
            psutil.Process(daemon_pid).wait(5)


def test_ensure_alive_gives_up_after_max_restarts(script: Path, port: int) -> None:
    cmd = [sys.executable, str(script), str(port)]
    with ServerProcess(cmd, port=port, name="stub", max_restarts=0) as server:
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
        assert wait_until(lambda: server.died)
        with pytest.raises(ServerDied, match="stub' exited again after 0 restarts"):
            server.ensure_alive()
        assert not server.is_alive()
    assert port_is_free(port)


def test_a_record_naming_this_very_process_is_never_acted_on(state_dir: Path) -> None:
    me = psutil.Process()
    record = {
        "pid": me.pid,
        "create_time": me.create_time(),
        "pgid": os.getpgrp(),
        "run_id": "forged",
        "owner_pid": 999_999_999,
        "owner_create_time": 0.0,
        "name": "forged",
        "cmd": "x",
        "port": None,
        "started_at": 0.0,
        "members": [],
    }
    forged = state_dir / "servers" / "forged.json"
    forged.parent.mkdir(parents=True)
    forged.write_text(json.dumps(record))
    try:
        assert stop_stale_servers(stop_timeout=0.1) == []
        assert forged.exists()
    finally:
        forged.unlink()

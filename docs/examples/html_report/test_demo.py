"""A small suite with the usual troubles, for the HTML report's screenshot (docs/how-to)."""

import socket
import subprocess
import threading
import time

import pytest

log_files = []  # a module global keeping what the tests open: the classic slow creep
servers = []


@pytest.mark.parametrize("n", range(6))
def test_parse(n):
    assert int(str(n)) == n


@pytest.mark.leakguard(cleanup=False)
@pytest.mark.parametrize("n", range(4))
def test_log_rotation(tmp_path, n):
    log_files.append(open(tmp_path / f"app-{n}.log", "w"))


def test_start_server():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    servers.append(server)  # never closed: cleanup closes it through its owner


@pytest.mark.leakguard(cleanup=False)
def test_start_server_and_forget_it():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    servers.append(server)


@pytest.mark.parametrize("n", range(3))
def test_math(n):
    assert n * 2 == n + n


def test_background_flusher():
    threading.Thread(target=time.sleep, args=(30,), name="flusher", daemon=True).start()


def test_spawn_helper():
    subprocess.Popen(["sleep", "30"])  # leakguard stops it (a child of the test)


@pytest.mark.parametrize("n", range(3))
def test_strings(n):
    assert str(n).isdigit()


def test_bind_the_service_port():
    sock = socket.socket()
    try:
        sock.bind(("127.0.0.1", servers[-1].getsockname()[1]))
    finally:
        sock.close()


@pytest.mark.parametrize("n", range(4))
def test_more_parsing(n):
    assert float(n) == n

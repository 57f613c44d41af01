import sys
from pathlib import Path

import pytest

import leakguard

APP = Path(__file__).resolve().parent.parent / "server.py"


@pytest.fixture(scope="module")
def port():
    return leakguard.free_port()


@pytest.fixture
def wrapped(server_process, port):
    # A string runs through `/bin/sh -c`, as a launcher script would. The `; echo` keeps the
    # shell alive as the server's parent: stopping only the shell would orphan the server.
    cmd = f"{sys.executable} {APP} {port}; echo 'server.py exited'"
    return server_process(cmd, port=port, ready="/health")

import sys
from pathlib import Path

import pytest

import leakguard

APP = Path(__file__).resolve().parent.parent / "server.py"
# Binds after ~2 s, then answers /health with 503 for 3 s more while it warms up.
SLOW = ["--bind-after", "2", "--healthy-after", "3"]


@pytest.fixture
def slow_api(server_process, free_port):
    cmd = [sys.executable, str(APP), str(free_port), *SLOW]
    # Ready only after 3 answers of 2xx in a row: not when it binds, not on one lucky answer.
    return server_process(cmd, port=free_port, ready="/health", ready_successes=3)


@pytest.fixture
def tcp_ready_api(server_process, free_port):
    cmd = [sys.executable, str(APP), str(free_port), *SLOW]
    return server_process(cmd, port=free_port, ready="tcp")

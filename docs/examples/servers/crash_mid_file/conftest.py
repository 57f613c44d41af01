import sys
from pathlib import Path

import pytest

import leakguard

APP = Path(__file__).resolve().parent.parent / "server.py"


@pytest.fixture(scope="session")
def api():
    # Started while a session fixture is set up: leakguard checks it before every test that
    # uses `api`, and restarts it if it died (on_death="fail" fails those tests instead).
    port = leakguard.free_port()
    cmd = [sys.executable, str(APP), str(port)]
    with leakguard.ServerProcess(cmd, port=port, ready="/health") as server:
        yield server

import sys
from pathlib import Path

import pytest

import leakguard

APP = Path(__file__).resolve().parent.parent / "server.py"


@pytest.fixture(scope="session")
def api():
    port = leakguard.free_port()
    with leakguard.ServerProcess([sys.executable, str(APP), str(port)], port=port) as server:
        yield server

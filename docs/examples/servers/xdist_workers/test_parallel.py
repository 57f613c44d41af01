import sys
import urllib.request
from pathlib import Path

import pytest

import leakguard

APP = Path(__file__).resolve().parent.parent / "server.py"


@pytest.mark.parametrize("n", range(12))
def test_each_test_starts_two_servers(server_process, free_port, n):
    # free_port reserves each port across every xdist worker (and every run of this user), so
    # two workers never race for the same one.
    other_port = leakguard.free_port()
    for port in (free_port, other_port):
        server = server_process([sys.executable, str(APP), str(port)], port=port, ready="/health")
        with urllib.request.urlopen(server.url + "/", timeout=5) as response:
            assert response.status == 200

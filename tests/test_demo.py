"""The README's demo really catches the leaks it promises (run as the README runs it)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_demo_suite_catches_its_three_leaks_and_passes_the_clean_tests() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "demo", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 1, out
    assert "5 passed, 3 errors" in out, out
    assert "leakguard: test_demo.py::test_forgotten_worker_thread leaked 1 resource" in out
    assert "ThreadPoolExecutor shut down, worker 'http-worker_0' stopped" in out
    assert "leakguard: test_demo.py::test_forgotten_server_process leaked 1 resource" in out
    assert "leakguard: test_demo.py::test_forgotten_listening_socket leaked 1 resource" in out
    assert re.search(r"port\s+tcp 127\.0\.0\.1:\d+ LISTEN", out), out

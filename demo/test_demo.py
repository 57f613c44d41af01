"""A tiny suite with the leaks users lose days to. Run: pytest demo  (it exits 1: three tests leak)."""

import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

POOLS = []


def test_clean_thread_is_fine():
    worker = threading.Thread(target=time.sleep, args=(0.05,))
    worker.start()  # ends within the grace period: not a leak


def test_forgotten_worker_thread():
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-worker")
    POOLS.append(pool)  # still referenced, never shut down
    pool.submit(print, "serving").result()


def test_forgotten_server_process():
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])


def test_forgotten_listening_socket():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    POOLS.append(server)


@pytest.mark.no_resource_tracking("threads")
def test_opted_out_of_thread_checks():
    threading.Thread(target=time.sleep, args=(1,), daemon=True).start()

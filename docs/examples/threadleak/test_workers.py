# examples/threadleak/test_workers.py
import threading

import pytest

STOP = threading.Event()


def start(name, daemon=False):
    threading.Thread(target=STOP.wait, args=(1,), name=name, daemon=daemon).start()


def test_pool_worker():
    start("pool/1")  # excluded by its name


def test_daemon():
    start("watcher", daemon=True)  # excluded: a daemon


def test_leak():
    start("worker")  # a leak for both plugins


# was: @pytest.mark.threadleak(enabled=False)
@pytest.mark.no_resource_tracking
def test_not_checked():
    start("legacy")


# was: @pytest.mark.threadleak(exclude=r"legacy-")
@pytest.mark.leakguard(ignore=[r"threads: ^thread 'legacy-"])
def test_marker_exclude():
    start("legacy-2")

# examples/adopt/test_new.py
# A test added after the baseline was recorded, with a leak of its own.
from app import Poller


def test_new_feature():
    Poller().start()

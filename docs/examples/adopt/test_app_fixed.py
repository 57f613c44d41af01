# examples/adopt/test_app_fixed.py
# test_app.py once its two leaks are fixed (the ratchet step).
from app import Poller, open_audit_log, report_metrics


def test_poller_stops():
    Poller().start().stop()


def test_poller_legacy():
    poller = Poller().start()
    poller.stop()


def test_audit_log(tmp_path):
    with open_audit_log(tmp_path / "audit.log") as log:
        log.write("login\n")


def test_metrics():
    assert report_metrics(3) == 3

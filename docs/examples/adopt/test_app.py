# examples/adopt/test_app.py
from app import Poller, open_audit_log, report_metrics


def test_poller_stops():
    Poller().start().stop()


def test_poller_legacy():
    Poller().start()  # never stopped: a leak this suite has had for years


def test_audit_log(tmp_path):
    open_audit_log(tmp_path / "audit.log").write("login\n")  # never closed


def test_metrics():
    assert report_metrics(3) == 3

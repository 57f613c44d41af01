# examples/adopt/app.py
"""A small app with the kind of leaks a big suite has: a poller a test forgets to stop, a log
file nobody closes, and a telemetry thread that lives as long as the process, by design."""

import threading

_AUDIT_FILES = []
_EXPORTER = None


class Poller:
    def __init__(self):
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="poller", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.05):
            pass

    def stop(self):
        self._stop.set()
        self.thread.join()


def open_audit_log(path):
    log = open(path, "a")
    _AUDIT_FILES.append(log)  # kept for the process's life: nobody closes it
    return log


def report_metrics(value):
    """Starts the exporter thread on first use; it runs until the process exits."""
    global _EXPORTER
    if _EXPORTER is None:
        _EXPORTER = threading.Thread(
            target=threading.Event().wait, name="metrics-exporter", daemon=True
        )
        _EXPORTER.start()
    return value

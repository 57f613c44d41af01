"""Readiness probes: a TCP connect, an HTTP GET that must answer 2xx, or the user's callable."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

Ready = str | Callable[[], bool] | None
"""``"tcp"``, ``"http"`` (GET /), a path such as ``"/health"`` (HTTP GET), a callable, or None."""

PROBE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Probe:
    """One readiness check; ``check()`` returns ``None`` when ready, else why not."""

    description: str
    check: Callable[[], str | None]


def wait_until_ready(
    probe: Probe,
    *,
    successes: int,
    timeout: float,
    exited: Callable[[], bool],
    on_exit: Callable[[], Exception],
    on_timeout: Callable[[str], Exception],
) -> None:
    """Poll ``probe`` with back-off (5 ms doubling to 100 ms) until it passes ``successes`` times
    in a row. Raise ``on_exit()`` as soon as the process has exited — no point waiting out the
    timeout for a server that is gone — or ``on_timeout(last failure)`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    in_a_row, delay, last_error = 0, 0.005, ""
    while True:
        if exited():
            raise on_exit()
        error = probe.check()
        if error is None:
            in_a_row += 1
            if in_a_row >= successes:
                return
        else:
            in_a_row, last_error = 0, error
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise on_timeout(last_error)
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.1)


def make_probe(ready: Ready, host: str, port: int | None) -> Probe:
    if ready is None:
        ready = "tcp" if port is not None else "running"
    if callable(ready):
        return Probe(f"callable {getattr(ready, '__qualname__', ready)!r}", _callable(ready))
    if ready == "running":
        return Probe("process running", lambda: None)
    if port is None:
        raise ValueError(f"ready={ready!r} needs a port")
    if ready == "tcp":
        return Probe(f"TCP connect to {host}:{port}", lambda: _tcp(host, port))
    if ready == "http" or ready.startswith("/"):
        path = "/" if ready == "http" else ready
        return Probe(f"HTTP GET http://{host}:{port}{path}", lambda: _http(host, port, path))
    raise ValueError(
        f"ready must be 'tcp', 'http', a path starting with '/', a callable or None; got {ready!r}"
    )


def _tcp(host: str, port: int) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
            return None
    except OSError as exc:
        return f"connect failed: {exc}"


def _http(host: str, port: int, path: str) -> str | None:
    conn = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        response.read()
    except (OSError, http.client.HTTPException) as exc:
        return f"GET {path} failed: {exc!r}"
    finally:
        conn.close()
    if 200 <= response.status < 300:
        return None
    return f"GET {path} answered {response.status} {response.reason}"


def _callable(ready: Callable[[], bool]) -> Callable[[], str | None]:
    def check() -> str | None:
        # A probe that raises (ConnectionRefusedError while the server binds) means "not yet".
        try:
            ok = ready()
        except Exception as exc:
            return f"raised {exc!r}"
        return None if ok else "returned false"

    return check

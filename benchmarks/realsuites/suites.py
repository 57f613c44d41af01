"""The real suites: pinned versions, their test deps, and what is left out of each run and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Suite:
    name: str
    package: str  # the name on the package index
    version: str
    layout: Literal["sdist", "wheel"]  # wheel: the tests ship inside the installed package
    deps: tuple[str, ...]
    paths: tuple[str, ...]  # what to collect; {site}: the venv's site-packages
    args: tuple[str, ...] = ()  # the suite's own flags; {site} as in paths
    keyword: tuple[str, str] | None = None  # (-k expression, why)
    marks: tuple[str, str] | None = None  # (-m expression, why)
    deselect: tuple[tuple[str, str], ...] = ()  # (node id prefix, why)
    ignore: tuple[tuple[str, str], ...] = ()  # (path, why)
    flaky: tuple[tuple[str, str], ...] = ()  # (node id, why): known to differ run to run
    note: str = ""  # which part of the suite runs, and why not all of it
    # Source of a plugin loaded in both runs: what the suite's own test runner sets up.
    harness: str = ""
    run_limit: float = 900.0  # seconds for one whole run before its process group is killed


NO_TARPIT = (
    "connects to 240.0.0.0 (TARPIT_HOST) to provoke connect timeouts: only loopback traffic "
    "is allowed here (and under gVisor the connect succeeds, so "
    "test_http2_probe_blocked_per_thread hangs to the timeout)"
)

TORNADO_HARNESS = """
import logging

from tornado.httpclient import AsyncHTTPClient


def pytest_configure(config):
    # As tornado.test.runtests.main: its tests assert that no unexpected log records appear.
    logging.getLogger("tornado.access").setLevel(logging.CRITICAL)
    AsyncHTTPClient.configure(None, defaults=dict(allow_ipv6=False))
"""

SUITES: tuple[Suite, ...] = (
    Suite(
        name="anyio",
        package="anyio",
        version="4.16.0",
        layout="sdist",
        deps=(
            "trio",
            "uvloop",
            "blockbuster",
            "hypothesis",
            "psutil",
            "pytest-mock",
            "trustme",
            "truststore",
            "exceptiongroup",
        ),
        paths=("tests",),
        keyword=("not ipv6", "'localhost' has no IPv6 address on this machine (/etc/hosts)"),
        flaky=(
            (
                "tests/test_sockets.py::TestTCPStream::test_receive_timeout[trio-ipv4]",
                "failed in 1 of 3 no-plugin runs here (an exception in its server thread)",
            ),
        ),
        deselect=(
            (
                "tests/test_sockets.py::test_getaddrinfo[",
                "resolves public host names (faß.de): no DNS here",
            ),
        ),
        ignore=(
            (
                "tests/test_pytest_plugin.py",
                "80 of the suite's 165 s: pytester runs of anyio's own plugin, no resources",
            ),
        ),
    ),
    Suite(
        name="trio",
        package="trio",
        version="0.35.0",
        layout="wheel",
        deps=("trustme", "pyOpenSSL", "cryptography", "async_generator"),
        args=(
            "-p",
            "trio._tests.pytest_plugin",
            "--skip-optional-imports",
            "--rootdir={site}",
        ),
        paths=("{site}/trio",),
    ),
    Suite(
        name="uvicorn",
        package="uvicorn",
        version="0.54.0",
        layout="sdist",
        deps=(
            "uvicorn[standard]==0.54.0",
            "pytest-xdist",
            "pytest-mock",
            "httpx2",
            "httpx",
            "trustme",
            "cryptography",
            "a2wsgi",
            "wsproto",
            "websockets",
            "zttp",
            "coverage-conditional-plugin",
        ),
        # Its ini asks for -n 8; the benchmark runs every suite in one process.
        args=("-n", "0"),
        paths=("tests",),
        ignore=(("tests/benchmarks", "codspeed micro-benchmarks, not behaviour tests"),),
    ),
    Suite(
        name="httpx",
        package="httpx",
        version="0.28.1",
        layout="sdist",
        deps=(
            "httpx[brotli,cli,http2,socks,zstd]==0.28.1",
            "uvicorn",
            "trio",
            "trustme",
            "chardet",
            "cryptography",
        ),
        paths=("tests",),
        deselect=(
            (
                "tests/client/test_proxies.py::test_async_proxy_close",
                "resolves a public proxy host name: no DNS here",
            ),
            (
                "tests/client/test_proxies.py::test_sync_proxy_close",
                "resolves a public proxy host name: no DNS here",
            ),
        ),
    ),
    Suite(
        name="starlette",
        package="starlette",
        version="1.10.0",
        layout="sdist",
        deps=(
            "starlette[full]==1.10.0",
            "httpx2[zstd]",
            "httpx",
            "trio",
            "blockbuster",
            "opentelemetry-sdk",
            "importlib-metadata",
        ),
        paths=("tests",),
    ),
    Suite(
        name="tornado",
        package="tornado",
        version="6.6.1",
        layout="wheel",
        deps=(),
        args=("--rootdir={site}",),
        paths=("{site}/tornado/test",),
        note="tornado.test is unittest-based; run under pytest with the set-up that its own "
        "runner (tornado.test.runtests) does before the tests.",
        harness=TORNADO_HARNESS,
    ),
    Suite(
        name="urllib3",
        package="urllib3",
        version="2.8.0",
        layout="sdist",
        deps=(
            "urllib3[brotli,zstd,socks,h2]==2.8.0",
            "tornado",
            "trustme",
            "cryptography",
            "hypercorn",
            "quart",
            "quart-trio",
            "trio",
            "pytest-socket",
            "httpx",
        ),
        paths=("test",),
        marks=("not requires_network", NO_TARPIT),
        # The same as the suite's requires_network tests, without the marker.
        keyword=(
            "not (test_https_timeout or test_enhanced_timeout or "
            "test_http2_probe_no_result_in_connect_error or test_http2_probe_blocked_per_thread "
            "or test_forwarding_proxy_request_timeout or test_tunneling_proxy_request_timeout "
            "or test_forwarding_proxy_connect_timeout or test_tunneling_proxy_connect_timeout "
            "or test_connect_timeout or test_total_applies_connect or "
            "test_create_connection_timeout)",
            NO_TARPIT,
        ),
    ),
)


def by_name(names: list[str]) -> list[Suite]:
    known = {s.name: s for s in SUITES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown suite(s): {', '.join(unknown)}; --list shows them")
    return [known[n] for n in names] if names else list(SUITES)

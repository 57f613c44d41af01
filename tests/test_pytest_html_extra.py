"""pytest-html: each leaking test's row carries its leak report and a per-kind sparkline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.options import QUIET, SHORT_GRACE

pytest.importorskip("pytest_html")

SUITE = """
import threading, time

def test_clean():
    pass

def test_leaks_a_thread():
    threading.Thread(target=time.sleep, args=(30,), name="left-behind", daemon=True).start()

def test_clean_again():
    pass
"""


def row_extras(report: str) -> str:
    """pytest-html keeps its rows as HTML-escaped JSON in a data attribute."""
    blob = re.search(r'data-jsonblob="([^"]*)"', report)
    assert blob is not None
    return blob.group(1).replace("&#34;", '"').replace("&quot;", '"').replace("&lt;", "<")


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_a_leaking_tests_row_carries_its_report_and_a_sparkline(
    pytester: pytest.Pytester, workers: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_it=SUITE)
    result = pytester.runpytest_subprocess(
        *QUIET, *SHORT_GRACE, "--leakguard", "-o", "leakguard_trackers=threads",
        "--html", "ph/report.html", *workers,
    )  # fmt: skip
    result.assert_outcomes(passed=3, errors=1)
    rows = row_extras(Path(pytester.path, "ph/report.html").read_text())
    # The leaking test's rows carry the sparkline (pytest-html shows a test's extras on each
    # of its rows); the clean tests carry none.
    sparklines = re.findall(r'leakguard-sparkline\\" data-test=\\"([^\\]*)', rows)
    assert sparklines
    assert set(sparklines) == {"test_it.py::test_leaks_a_thread"}
    assert rows.count("<svg") == len(sparklines)  # one kind tracked: one row per sparkline
    texts = [p.read_text() for p in Path(pytester.path, "ph/assets").glob("*.txt")]
    (text,) = [t for t in texts if "leakguard:" in t]
    assert text.startswith("leakguard: test_it.py::test_leaks_a_thread leaked 1 resource")
    assert "thread 'left-behind' (daemon)" in text


def test_without_pytest_htmls_report_no_extras_are_added(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        conftest="""
        def pytest_sessionfinish(session):
            print("EXTRAS", session.config.pluginmanager.has_plugin("leakguard-html-extras"))
        """,
        test_it=SUITE,
    )
    off = pytester.runpytest_subprocess(*QUIET, *SHORT_GRACE, "--leakguard", "-s")
    off.stdout.fnmatch_lines(["*EXTRAS False*"])
    on = pytester.runpytest_subprocess(*QUIET, *SHORT_GRACE, "--leakguard", "-s", "--html=r.html")
    on.stdout.fnmatch_lines(["*EXTRAS True*"])

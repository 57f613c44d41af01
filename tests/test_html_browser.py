"""The HTML report in a real browser (headless Chromium): no script errors, every chart drawn."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser_support import find_browser, look, screenshot
from tests.support.options import QUIET, SHORT_GRACE

BROWSER = find_browser()
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no chromium or chrome on PATH")
DEMO = Path(__file__).resolve().parent.parent / "docs" / "examples" / "html_report" / "test_demo.py"


def demo_report(pytester: pytest.Pytester) -> Path:
    """The docs' demo suite, run as the how-to shows it."""
    pytester.makepyfile(test_demo=DEMO.read_text())
    result = pytester.runpytest_subprocess(
        *QUIET, *SHORT_GRACE, "--leakguard", "--leakguard-html", "report.html"
    )
    result.assert_outcomes(passed=24, failed=1, errors=8)
    return Path(pytester.path, "report.html")


def test_the_demo_report_draws_every_chart_without_script_errors(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    assert BROWSER is not None
    page = demo_report(pytester)
    seen = look(BROWSER, page)
    assert seen.problems() == []
    assert seen.charts_in_page == 4  # threads, processes, ports, fds; tasks and sockets flat
    screenshot(BROWSER, page, tmp_path / "report.png")
    # Control: the same page with a script error is caught, and its charts are not counted.
    broken = tmp_path / "broken.html"
    broken.write_text(page.read_text().replace("(function () {", "(function () { missing();", 1))
    problems = look(BROWSER, broken).problems()
    assert any("missing is not defined" in p for p in problems)
    assert any("did not finish" in p for p in problems)

"""Render the docs' demo suite as an HTML report, look at it in headless Chromium, and save the
screenshot the how-to shows (docs/how-to/html-report.png).

Run:  python benchmarks/html_screenshot.py [--out docs/how-to/html-report.png]

Fails (exit 1) when the page logs a script error or a chart is not drawn; exit 2 when no
Chromium is installed (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser_support import find_browser, look, screenshot  # noqa: E402

DEMO = ROOT / "docs" / "examples" / "html_report" / "test_demo.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "how-to" / "html-report.png")
    opts = parser.parse_args()
    browser = find_browser()
    if browser is None:
        print("no chromium or chrome on PATH (Debian: apt-get install chromium)")
        return 2
    with tempfile.TemporaryDirectory(prefix="leakguard-html-") as tmp:
        folder = Path(tmp) / "demo"
        folder.mkdir()
        shutil.copy(DEMO, folder / "test_demo.py")
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
             "--leakguard", "-o", "leakguard_grace=0.05", "--leakguard-html", "report.html"],
            cwd=folder, capture_output=True, check=False,
        )  # fmt: skip
        page = folder / "report.html"
        print(f"demo run and report: {time.perf_counter() - start:.1f} s, {page.stat().st_size} B")
        seen = look(browser, page)
        problems = seen.problems()
        print(
            f"charts drawn: {seen.charts_drawn} of {seen.charts_in_page}; console: {seen.console}"
        )
        if problems:
            print("\n".join(problems))
            return 1
        screenshot(browser, page, opts.out)
        print(f"screenshot: {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Looking at a generated HTML report in headless Chromium: screenshot, script errors, charts."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run")
# Virtual time: the page's script has run (and the layout settled) when the capture is taken.
BUDGET = "--virtual-time-budget=3000"


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass(frozen=True)
class Look:
    """What the browser saw: the page's verdict (set by its own script) and its console."""

    ready: bool
    charts_in_page: int
    charts_drawn: int
    console: list[str]

    def problems(self) -> list[str]:
        found = [f"console: {line}" for line in self.console]
        if not self.ready:
            found.append("the page's script did not finish (no data-leakguard=ready)")
        if self.charts_drawn != self.charts_in_page:
            found.append(f"{self.charts_drawn} of {self.charts_in_page} charts drawn")
        return found


def look(browser: str, page: Path, timeout: float = 60) -> Look:
    """Load ``page``, let its script run, and read back the DOM and the console."""
    done = subprocess.run(
        [browser, *FLAGS, BUDGET, "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    dom = done.stdout
    root = re.search(r"<html[^>]*>", dom)
    tag = root.group(0) if root else ""
    drawn = re.search(r'data-charts="(\d+)"', tag)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return Look(
        ready='data-leakguard="ready"' in tag,
        charts_in_page=page.read_text(encoding="utf-8").count('<svg class="chart"'),
        charts_drawn=int(drawn.group(1)) if drawn else 0,
        console=console,
    )


def screenshot(
    browser: str, page: Path, png: Path, size: tuple[int, int] = (1200, 1300), timeout: float = 60
) -> None:
    png.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [browser, *FLAGS, BUDGET, f"--window-size={size[0]},{size[1]}", f"--screenshot={png}",
         page.as_uri()],
        capture_output=True,
        timeout=timeout,
        check=True,
    )  # fmt: skip
    # A PNG starts with its signature; an empty capture would be a few hundred bytes.
    data = png.read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or len(data) < 10_000:
        raise AssertionError(f"{png}: no usable screenshot ({len(data)} bytes)")

"""pytest-html: a leaking test's row carries its leak report and a per-kind sparkline."""

from __future__ import annotations

from collections.abc import Generator
from html import escape
from typing import Any

import pytest

from leakguard.core.htmlreport.charts import sparkline
from leakguard.core.timeline import Timeline

WINDOW = 20
"""Tests shown before the leaking one: its row is written when it ends, so none after it."""


class HtmlExtras:
    """Registered only when pytest-html writes a report (``--html``); on xdist workers too:
    the extras travel on the report to the controller, where pytest-html renders them."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if call.when != "teardown":
            return report
        point = self.timeline.current(item.nodeid)
        if point is None or not point["leaks"]:
            return report
        from pytest_html import extras  # type: ignore[import-untyped]  # no type hints shipped

        window = [*self.timeline.points[-WINDOW:], point]
        caption = (
            f"<p style='font:12px sans-serif'>leakguard: resources after each of the last "
            f"{len(window)} tests (this one marked)</p>"
        )
        added: list[dict[str, Any]] = [
            extras.text(point["report"] or _fallback(point), name="leakguard"),
            extras.html(
                f'<div class="leakguard-sparkline" data-test="{escape(item.nodeid)}">'
                f"{caption}{sparkline(window, item.nodeid)}</div>"
            ),
        ]
        report.extras = [*getattr(report, "extras", []), *added]  # type: ignore[attr-defined]  # pytest-html's field
        return report


def _fallback(point: dict[str, Any]) -> str:
    return "\n".join(f"{leak['category']}: {leak['description']}" for leak in point["leaks"])

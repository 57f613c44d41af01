"""The standalone HTML report: one offline file, charts drawn as inline SVG."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from leakguard.core.htmlreport.charts import sparkline
from leakguard.core.htmlreport.page import render

__all__ = ["render", "sparkline", "write_report"]


def write_report(
    path: str, data: Mapping[str, Any], title: str = "leakguard report", root: str | None = None
) -> None:
    """Render and write to a temporary file beside ``path``, then rename: never half a page."""
    page = render(data, title, root)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(page)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

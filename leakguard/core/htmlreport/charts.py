"""The charts as inline SVG: one per kind over a worker's tests, and the small sparkline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

Point = Mapping[str, Any]

WIDTH, HEIGHT = 1000, 130
LEFT, RIGHT, TOP, BOTTOM = 46, 12, 10, 22
MAX_TITLES = 8
"""Leaks named in one marker's tooltip; the rest are counted."""


def kinds_of(points: Sequence[Point]) -> list[str]:
    """The kinds counted anywhere in ``points``, in the order trackers were first seen."""
    kinds: dict[str, None] = {}
    for point in points:
        kinds.update(dict.fromkeys(point.get("counts", {})))
    return list(kinds)


class Scale:
    """Test index -> x, count -> y, inside the plot area of one chart."""

    def __init__(self, n: int, values: Sequence[int], width: int, height: int, pad: int) -> None:
        self.n = n
        self.lo = min(values, default=0)
        self.hi = max(values, default=0)
        if self.hi == self.lo:
            self.hi = self.lo + 1
        self.left, self.right = LEFT if pad else 2, width - (RIGHT if pad else 2)
        self.top, self.bottom = TOP if pad else 2, height - (BOTTOM if pad else 2)

    def x(self, index: float) -> float:
        span = max(self.n - 1, 1)
        return round(self.left + (self.right - self.left) * index / span, 1)

    def y(self, count: float) -> float:
        share = (count - self.lo) / (self.hi - self.lo)
        return round(self.bottom - (self.bottom - self.top) * share, 1)


def _step_path(scale: Scale, values: Sequence[int | None]) -> str:
    """A step line: a count holds from one test to the next. Gaps where a kind was not
    counted (a test checked with fewer trackers) break the line."""
    parts: list[str] = []
    previous: int | None = None
    for i, value in enumerate(values):
        if value is None:
            previous = None
            continue
        x, y = scale.x(i), scale.y(value)
        if previous is None:
            parts.append(f"M{x},{y}")
        else:
            parts.append(f"H{x}V{y}")
        previous = value
    return "".join(parts)


def residue_spans(points: Sequence[Point]) -> list[dict[str, Any]]:
    """Each leftover of one worker: from the test that left it to the last test that started
    with it present."""
    spans: dict[tuple[str, str, str], dict[str, Any]] = {}

    def span(owner: str, tracker: str, description: str, index: int) -> dict[str, Any]:
        key = (owner, tracker, description)
        found = spans.get(key)
        if found is None:
            found = spans[key] = {"owner": owner, "tracker": tracker, "description": description,
                                  "first": index, "last": index}  # fmt: skip
        return found

    for point in points:
        index = point["index"]
        for leak in point.get("leaks", ()):
            if leak.get("residue"):
                span(leak["owner"], leak["tracker"], leak["description"], index)
        for left in point.get("residue", ()):
            found = span(left["owner"], left["tracker"], left["description"], index)
            found["last"] = max(found["last"], index)
    return list(spans.values())


def chart(
    kind: str,
    points: Sequence[Point],
    spans: Sequence[Mapping[str, Any]],
    anchors: Mapping[str, str],
) -> str:
    """One kind's chart over the tests of one worker (points in run order)."""
    values = [p.get("counts", {}).get(kind) for p in points]
    present = [v for v in values if v is not None]
    scale = Scale(len(points), present, WIDTH, HEIGHT, pad=1)
    out = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" data-kind="{escape(kind)}" '
        f'aria-label="{escape(kind)} after each test">'
    ]
    plot_h = scale.bottom - scale.top
    for span in spans:
        if span["tracker"] != kind:
            continue
        x1, x2 = scale.x(span["first"]), scale.x(span["last"])
        tip = (f"residue: {span['description']} (left by {span['owner']}; "
               f"tests {span['first'] + 1}–{span['last'] + 1})")  # fmt: skip
        out.append(
            f'<rect class="residue" x="{x1}" y="{scale.top}" width="{max(x2 - x1, 3)}" '
            f'height="{plot_h}"><title>{escape(tip)}</title></rect>'
        )
    out.append(_axes(scale, len(points)))
    out.append(f'<path class="line" d="{_step_path(scale, values)}"/>')
    by_test = {p["test"]: p for p in points}
    for point in points:
        index, count = point["index"], point.get("counts", {}).get(kind)
        if point.get("outcome") in ("failed", "error") or point.get("error_at_teardown"):
            out.append(
                f'<rect class="failed" x="{scale.x(index) - 1.5}" y="{scale.bottom + 3}" '
                f'width="3" height="5"><title>{escape(point["test"])}: '
                f"{escape(_outcome(point))}</title></rect>"
            )
        leaks = [leak for leak in point.get("leaks", ()) if leak["tracker"] == kind]
        if leaks and count is not None:
            out.append(_marker(scale, index, count, point, leaks, anchors))
        for owner in point.get("polluters", ()):
            source = by_test.get(owner)
            if source is None or not any(
                r["owner"] == owner and r["tracker"] == kind for r in point.get("residue", ())
            ):
                continue
            src_count = source.get("counts", {}).get(kind)
            if src_count is None or count is None:
                continue
            tip = f"{owner} left what broke {point['test']}"
            out.append(
                f'<line class="polluter" x1="{scale.x(source["index"])}" y1="{scale.y(src_count)}" '
                f'x2="{scale.x(index)}" y2="{scale.y(count)}" marker-end="url(#arrow)">'
                f"<title>{escape(tip)}</title></line>"
            )
    out.append(
        f'<line class="cursor" x1="-10" x2="-10" y1="{scale.top}" y2="{scale.bottom}"/></svg>'
    )
    return "".join(out)


def _axes(scale: Scale, n: int) -> str:
    y_lo, y_hi = scale.y(scale.lo), scale.y(scale.hi)
    return (
        f'<g class="axis"><line x1="{scale.left}" x2="{scale.left}" y1="{scale.top}" '
        f'y2="{scale.bottom}"/><line x1="{scale.left}" x2="{scale.right}" y1="{scale.bottom}" '
        f'y2="{scale.bottom}"/>'
        f'<text x="{scale.left - 4}" y="{y_hi + 4}" text-anchor="end">{scale.hi}</text>'
        f'<text x="{scale.left - 4}" y="{y_lo + 4}" text-anchor="end">{scale.lo}</text>'
        f'<text x="{scale.left}" y="{scale.bottom + 16}">1</text>'
        f'<text x="{scale.right}" y="{scale.bottom + 16}" text-anchor="end">{n}</text></g>'
    )


def _outcome(point: Point) -> str:
    text = str(point.get("outcome", ""))
    return text + (", error at teardown" if point.get("error_at_teardown") else "")


def _marker(
    scale: Scale,
    index: int,
    count: int,
    point: Point,
    leaks: Sequence[Mapping[str, Any]],
    anchors: Mapping[str, str],
) -> str:
    """One marker per test and kind, however many it leaked; its tooltip names them."""
    category = "leak" if any(leak["category"] == "leak" for leak in leaks) else leaks[0]["category"]
    lines = [f"{point['test']} ({_outcome(point)})"]
    lines += [f"{leak['category']}: {leak['description']}" for leak in leaks[:MAX_TITLES]]
    if len(leaks) > MAX_TITLES:
        lines.append(f"… and {len(leaks) - MAX_TITLES} more")
    circle = (
        f'<circle class="mark {escape(category)}" cx="{scale.x(index)}" cy="{scale.y(count)}" '
        f'r="5" data-index="{index}"><title>{escape(chr(10).join(lines))}</title></circle>'
    )
    anchor = anchors.get(point["test"])
    return f'<a href="#{anchor}">{circle}</a>' if anchor else circle


def sparkline(points: Sequence[Point], focus: str, width: int = 160, height: int = 22) -> str:
    """A row per kind: the counts over ``points`` with the ``focus`` test marked (pytest-html)."""
    rows = []
    for kind in kinds_of(points):
        values = [p.get("counts", {}).get(kind) for p in points]
        present = [v for v in values if v is not None]
        scale = Scale(len(points), present, width, height, pad=0)
        marks = []
        for i, point in enumerate(points):
            count = values[i]
            if point["test"] == focus and count is not None:
                leaked = any(leak["tracker"] == kind for leak in point.get("leaks", ()))
                color = "#d62728" if leaked else "#555"
                marks.append(
                    f'<circle cx="{scale.x(i)}" cy="{scale.y(count)}" r="3" fill="{color}"/>'
                )
        rows.append(
            f'<div style="display:flex;align-items:center;gap:6px;font:11px sans-serif">'
            f'<span style="width:64px">{escape(kind)}</span>'
            f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f'<path d="{_step_path(scale, values)}" fill="none" stroke="#1f77b4" '
            f'stroke-width="1.2"/>{"".join(marks)}</svg>'
            f"<span>{present[-1] if present else ''}</span></div>"
        )
    return "".join(rows)

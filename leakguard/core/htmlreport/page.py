"""The report page: the charts per worker, the leaks by creation site, each owner's report."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from importlib import resources
from typing import Any

from leakguard.core.htmlreport.charts import chart, kinds_of, residue_spans
from leakguard.core.origin import Origin

Data = Mapping[str, Any]


def render(data: Data, title: str = "leakguard report", root: str | None = None) -> str:
    """The whole page for a JSON report's data (``findings``, ``problems``, ``timeline``);
    file names under ``root`` are shown relative to it."""
    findings: list[Mapping[str, Any]] = list(data.get("findings", ()))
    anchors = {
        owner: f"r{i}" for i, owner in enumerate(dict.fromkeys(f["owner"] for f in findings))
    }
    workers = by_worker(data.get("timeline", ()))
    body = [
        f"<h1>{escape(title)}</h1>",
        _totals(data, workers),
        _legend(),
        *(_worker_section(name, points, anchors, len(workers)) for name, points in workers.items()),
        _sites(findings, anchors, root),
        _reports(findings, anchors),
        _problems(data.get("problems", ())),
    ]
    script_data = {
        name: {
            "tests": [p["test"] for p in points],
            "outcomes": [p.get("outcome", "") for p in points],
            "counts": {k: [p.get("counts", {}).get(k) for p in points] for k in kinds_of(points)},
            "anchors": [anchors.get(p["test"], "") for p in points],
        }
        for name, points in workers.items()
    }
    template = _resource("template.html")
    return (
        template.replace("{{title}}", escape(title))
        .replace("{{style}}", _resource("report.css"))
        .replace("{{body}}", "\n".join(part for part in body if part))
        .replace("{{data}}", _script_json(script_data))
        .replace("{{script}}", _resource("report.js"))
    )


def by_worker(points: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The points of each worker, in run order, numbered 0.. (gaps, if any, closed)."""
    workers: dict[str, list[dict[str, Any]]] = {}
    for point in sorted(points, key=lambda p: (p.get("worker", ""), p.get("index", 0))):
        workers.setdefault(str(point.get("worker", "")), []).append(dict(point))
    for points_of in workers.values():
        for i, point in enumerate(points_of):
            point["index"] = i
    return workers


def _resource(name: str) -> str:
    return resources.files("leakguard.core.htmlreport").joinpath(name).read_text(encoding="utf-8")


def _script_json(value: Any) -> str:
    # Inside <script>, "</script>" or "<!--" in a test id would end or confuse the element.
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e")


def _totals(data: Data, workers: Mapping[str, Sequence[Any]]) -> str:
    tests = sum(len(points) for points in workers.values())
    totals: Mapping[str, int] = data.get("totals", {})
    leaked = sum(totals.values())
    owners = len({f["owner"] for f in data.get("findings", ()) if f.get("kind", "leak") == "leak"})
    by_kind = ", ".join(f"{escape(k)}: {n}" for k, n in sorted(totals.items()))
    where = f" on {len(workers)} workers" if len(workers) > 1 else ""
    text = f"{tests} checked tests{where}; "
    text += f"{owners} owners leaked {leaked} resources ({by_kind})" if leaked else "no leaks"
    return f'<p class="totals">{text}</p>'


def _legend() -> str:
    return (
        '<p class="legend"><span class="key line"></span> count after each test (after cleanup) '
        '<span class="key mark-leak"></span> leak <span class="key mark-other"></span> '
        "cache / garbage / native "
        '<span class="key residue"></span> residue (left until gone) '
        '<span class="key polluter"></span> polluter → the test it broke '
        '<span class="key failed"></span> failed test</p>'
    )


def _worker_section(
    name: str, points: Sequence[Mapping[str, Any]], anchors: Mapping[str, str], workers: int
) -> str:
    heading = f"worker {escape(name)}" if name else "the run"
    spans = residue_spans(points)
    drawn, flat = [], []
    for kind in kinds_of(points):
        values = {p.get("counts", {}).get(kind) for p in points} - {None}
        marked = any(leak["tracker"] == kind for p in points for leak in p.get("leaks", ()))
        if len(values) > 1 or marked or any(s["tracker"] == kind for s in spans):
            drawn.append(
                f"<figure><figcaption>{escape(kind)}</figcaption>"
                f"{chart(kind, points, spans, anchors)}</figure>"
            )
        else:  # a flat line says less than a number
            flat.append(f"{escape(kind)} {min(values, default=0)}")
    charts = "".join(drawn)
    if flat:
        charts += f'<p class="flat">unchanged throughout: {", ".join(flat)}</p>'
    if not points:
        charts = "<p>no test was checked</p>"
    return (
        f'<section class="timeline" data-worker="{escape(name)}"><h2>{heading}: '
        f"{len(points)} tests</h2>{charts}</section>"
    )


def site_of(leak: Mapping[str, Any], root: str | None = None) -> str:
    """Where a leak was made: its kind and creation site, what differs per test left out."""
    kind = str(leak.get("kind", ""))
    if kind == "fd":
        # "17 file /tmp/…/a.log" -> "fd file": neither the number nor the path is the site.
        words = str(leak.get("label", "")).split()
        kind = " ".join(["fd", *words[1:2]])
    origin = leak.get("origin")
    if not origin:
        return kind
    return f"{kind} {leak.get('verb', 'created')} at {Origin.from_dict(origin).format(root)}"


def _sites(
    findings: Sequence[Mapping[str, Any]], anchors: Mapping[str, str], root: str | None
) -> str:
    sites: dict[tuple[str, str], list[str]] = {}
    for finding in findings:
        for leak in finding.get("leaks", ()):
            owners = sites.setdefault((site_of(leak, root), str(leak.get("category", "leak"))), [])
            if finding["owner"] not in owners:
                owners.append(finding["owner"])
    if not sites:
        return '<section id="sites"><h2>Leaks by creation site</h2><p>none</p></section>'
    rows = []
    for (site, category), owners in sorted(sites.items(), key=lambda item: -len(item[1])):
        links = ", ".join(f'<a href="#{anchors[o]}">{escape(o)}</a>' for o in owners)
        rows.append(
            f'<tr class="{escape(category)}"><td>{len(owners)}</td><td>{escape(category)}</td>'
            f"<td><code>{escape(site)}</code></td><td>{links}</td></tr>"
        )
    return (
        '<section id="sites"><h2>Leaks by creation site</h2><table><thead><tr><th>count</th>'
        "<th>what</th><th>site</th><th>tests (owners)</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></section>"
    )


def _reports(findings: Sequence[Mapping[str, Any]], anchors: Mapping[str, str]) -> str:
    by_owner: dict[str, list[Mapping[str, Any]]] = {}
    for finding in findings:
        by_owner.setdefault(finding["owner"], []).append(finding)
    parts = []
    for owner, group in by_owner.items():
        actions = ", ".join(dict.fromkeys(str(f.get("action", "")) for f in group))
        lines = []
        for finding in group:
            if finding.get("message"):
                lines.append(str(finding["message"]))
            else:  # a library cache: named, no report of its own
                lines += [
                    f"{leak['description']} kept by {leak.get('holder', '?')} (process-wide cache)"
                    for leak in finding.get("leaks", ())
                ]
        parts.append(
            f'<details id="{anchors[owner]}" open><summary>{escape(owner)} '
            f'<span class="action">[{escape(actions)}]</span></summary>'
            f"<pre>{escape(chr(10).join(lines))}</pre></details>"
        )
    return (
        '<section id="reports"><h2>Reports</h2>' + ("".join(parts) or "<p>none</p>") + "</section>"
    )


def _problems(problems: Sequence[Mapping[str, Any]]) -> str:
    if not problems:
        return ""
    items = "".join(f"<li>{escape(str(p.get('message', '')))}</li>" for p in problems)
    return f'<section id="problems"><h2>Internal problems</h2><ul>{items}</ul></section>'

"""The markdown the benchmark prints: one row per suite, then each suite's changes and flags."""

from __future__ import annotations

from typing import Any

from . import timing

MESSAGE_WIDTH = 160  # the first line of an error, cut: the JSON has it whole
SIGNALS = {-6: "SIGABRT", -9: "SIGKILL", -11: "SIGSEGV", -15: "SIGTERM"}


def exit_text(meta: dict[str, Any]) -> str:
    code = int(meta["exit_code"])
    if meta.get("stopped"):
        return f"{meta['stopped']} ({code})"
    if code < 0:
        return f"{SIGNALS.get(code, 'signal')} ({128 - code} in a shell)"
    return str(code)


def _seconds(meta: dict[str, Any]) -> str:
    return f"{meta['wall']:.1f} s"


def _exits(parts: list[dict[str, Any]]) -> str:
    """Exit codes of the run and its continuations, repeats folded: ``SIGABRT (…) ×15 → 1``."""
    folded: list[tuple[str, int]] = []
    for text in map(exit_text, parts):
        if folded and folded[-1][0] == text:
            folded[-1] = (text, folded[-1][1] + 1)
        else:
            folded.append((text, 1))
    return " → ".join(text + (f" ×{n}" if n > 1 else "") for text, n in folded)


def _clip(text: str, width: int = MESSAGE_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def summary_table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| suite | tests | changed by leakguard | flaky (not counted) | flagged owners "
        "| time without | time with | ratio | CPU ratio | ratio, pairs in turn | CPU ratio, pairs "
        "| exit without / with |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['suite']} | setup failed: {r['error'].splitlines()[0]} |")
            continue
        without, parts = r["baseline_runs"][0], r["leakguard_runs"]
        with_wall = sum(p["wall"] for p in parts)
        ratio = with_wall / without["wall"] if without["wall"] else 0.0
        # CPU time: what a loaded machine disturbs far less than wall time ("–": not measured).
        with_cpu = sum(p.get("cpu", 0.0) for p in parts)
        cpu_ratio = (
            f"{with_cpu / without['cpu']:.2f}×"
            if without.get("cpu") and all(p.get("cpu") for p in parts)
            else "–"
        )
        with_exit = _exits(parts)
        pairs = r.get("timing_pairs", [])
        paired = f"{timing.summary(pairs, 'wall')} | {timing.summary(pairs, 'cpu')}"
        lines.append(
            f"| {r['suite']} {r['version']} | {r['tests']} | {len(r['changed'])} "
            f"| {len(r['flaky'])} | {len(r['findings'])} | {_seconds(without)} "
            f"| {with_wall:.1f} s | {ratio:.2f}× | {cpu_ratio} | {paired} "
            f"| {exit_text(without)} / {with_exit} |"
        )
    return lines


def _suite_section(r: dict[str, Any]) -> list[str]:
    lines = [f"### {r['suite']} {r['version']}", ""]
    if r.get("note"):
        lines += [r["note"], ""]
    if r["left_out"]:
        lines.append("Left out: " + "; ".join(f"`{what}` ({why})" for what, why in r["left_out"]))
        lines.append("")
    for abort in r["aborts"]:
        where = f"during `{abort['test']}`" if abort["test"] else "between tests"
        code = exit_text({"exit_code": abort["exit_code"]})
        more = f"; the {abort['continued']} tests not yet run went on in a new process"
        lines.append(
            f"- **The leakguard run died {where}: {code}**{more if abort['continued'] else ''}."
        )
    if r["aborts"]:
        lines.append("")
    for title, changes in (("Changed by leakguard", r["changed"]), ("Flaky", r["flaky"])):
        if not changes:
            continue
        lines.append(f"{title}:")
        for c in changes:
            why = f" — {c['flaky']}" if c["flaky"] else ""
            without, with_ = _clip(c["without"]), _clip(c["with_"])
            lines.append(f"- `{c['nodeid']}`: without: {without}; with: {with_}{why}")
        lines.append("")
    if r["problems"]:
        lines.append("leakguard internal problems:")
        lines += [f"- {p}" for p in r["problems"]]
        lines.append("")
    if r["flag_groups"]:
        lines.append(
            f"Flags ({len(r['findings'])} owners, {r['flagged_tests']} tests errored "
            "at teardown), grouped by what leaked and where it was made:"
        )
        for g in r["flag_groups"]:
            owners = g["owners"]
            shown = ", ".join(f"`{o}`" for o in owners[:3])
            more = f" and {len(owners) - 3} more" if len(owners) > 3 else ""
            cleanup = f"; cleanup: {_clip(', '.join(g['cleanup']))}" if g["cleanup"] else ""
            notes = f"; {_clip('; '.join(g['notes']))}" if g["notes"] else ""
            lines.append(
                f"- {len(owners)}× [{'/'.join(g['actions'])}] {g['tracker']}: `{g['description']}`"
                f" at {g['origin']}{cleanup}{notes} — {shown}{more}"
            )
        lines.append("")
    return lines


def render(results: list[dict[str, Any]], header: list[str]) -> str:
    lines = [*header, "", *summary_table(results), ""]
    for r in results:
        if "error" not in r:
            lines += _suite_section(r)
    return "\n".join(lines).rstrip() + "\n"

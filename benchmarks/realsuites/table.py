"""The markdown the benchmark prints: one row per suite, then each suite's changes and flags."""

from __future__ import annotations

from typing import Any

SIGNALS = {-6: "SIGABRT", -9: "SIGKILL", -11: "SIGSEGV", -15: "SIGTERM"}


def exit_text(meta: dict[str, Any]) -> str:
    code = int(meta["exit_code"])
    if meta.get("stopped"):
        return f"{meta['stopped']} ({code})"
    if code < 0:
        return f"{SIGNALS.get(code, 'signal')} ({128 - code} in a shell)"
    return str(code)


def _seconds(meta: dict[str, Any] | None) -> str:
    return f"{meta['wall']:.1f} s" if meta else "–"


def summary_table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| suite | tests | changed by leakguard | flaky (not counted) | flagged owners "
        "| time without | time with | ratio | exit without / with |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['suite']} | setup failed: {r['error'].splitlines()[0]} |")
            continue
        without, with_ = r["baseline_runs"][0], r["leakguard_run"]
        ratio = with_["wall"] / without["wall"] if without["wall"] else 0.0
        lines.append(
            f"| {r['suite']} {r['version']} | {r['tests']} | {len(r['changed'])} "
            f"| {len(r['flaky'])} | {len(r['findings'])} | {_seconds(without)} "
            f"| {_seconds(with_)} | {ratio:.2f}× | {exit_text(without)} / {exit_text(with_)} |"
        )
    return lines


def _suite_section(r: dict[str, Any]) -> list[str]:
    lines = [f"### {r['suite']} {r['version']}", ""]
    if r.get("note"):
        lines += [r["note"], ""]
    if r["left_out"]:
        lines.append("Left out: " + "; ".join(f"`{what}` ({why})" for what, why in r["left_out"]))
        lines.append("")
    running = r.get("aborted_during")
    if running:
        lines += [f"**The leakguard run stopped during `{running}`.**", ""]
    for title, changes in (("Changed by leakguard", r["changed"]), ("Flaky", r["flaky"])):
        if not changes:
            continue
        lines.append(f"{title}:")
        for c in changes:
            why = f" — {c['flaky']}" if c["flaky"] else ""
            lines.append(f"- `{c['nodeid']}`: without: {c['without']}; with: {c['with_']}{why}")
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
            cleanup = f"; cleanup: {', '.join(g['cleanup'])}" if g["cleanup"] else ""
            notes = f"; {'; '.join(g['notes'])}" if g["notes"] else ""
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

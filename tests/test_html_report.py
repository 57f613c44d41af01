"""The standalone HTML report: well-formed, every leak in it, one chart set per xdist worker."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.support.options import QUIET, SHORT_GRACE

SUITE = """
import socket, threading, time

kept = []

def test_clean():
    pass

def test_thread():
    threading.Thread(target=time.sleep, args=(30,), name="t</script><b>", daemon=True).start()

def test_file(tmp_path):
    kept.append(open(tmp_path / "a&b.log", "w"))

def test_port():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    kept.append(server)

def test_clean_again():
    pass
"""
VOID = {"meta", "link", "br", "hr", "img", "input", "source", "wbr", "col", "area", "base"}


class StrictPage(HTMLParser):
    """Collects the text and fails on any tag closed out of order or left open."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []
        self.titles: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._in_title = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)
        self._in_title += tag == "title"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        self._in_title -= tag == "title"

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_title:
            self.titles.append(data)


def parse(path: Path) -> StrictPage:
    page = StrictPage()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.errors == []
    assert page.stack == []
    return page


def run_suite(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_it=SUITE)
    return pytester.runpytest_subprocess(
        *QUIET, *SHORT_GRACE, "--leakguard", "--leakguard-no-cleanup",
        "-o", "leakguard_trackers=threads ports fds", "-o", "leakguard_report=out.json", *args,
    )  # fmt: skip


def test_the_html_report_is_well_formed_and_holds_every_leak(pytester: pytest.Pytester) -> None:
    result = run_suite(pytester, "--leakguard-html", "report/leaks.html")
    result.assert_outcomes(passed=5, errors=3)
    result.stdout.fnmatch_lines(["leakguard HTML report: report/leaks.html"])
    page = parse(Path(pytester.path, "report/leaks.html"))
    text = "".join(page.text)
    data = json.loads(Path(pytester.path, "out.json").read_text())
    leaks = [(f["owner"], leak) for f in data["findings"] for leak in f["leaks"]]
    assert len(leaks) == 3
    for owner, leak in leaks:
        assert leak["description"] in text  # the report text, unescaped by the parser
        assert any(owner in t and leak["description"] in t for t in page.titles)  # the marker
    assert "thread 't</script><b>' (daemon)" in text  # escaped, not markup
    charts = [a["data-kind"] for tag, a in page.tags if tag == "svg" and "data-kind" in a]
    assert charts == ["threads", "ports", "fds"]
    marks = [a for tag, a in page.tags if tag == "circle" and "mark" in (a.get("class") or "")]
    assert len(marks) == 3
    residue = [a for tag, a in page.tags if tag == "rect" and a.get("class") == "residue"]
    assert len(residue) == 3  # cleanup off: every leak stays to the end
    # The hover script's data names every test in run order.
    script = next(t for t in page.text if t.lstrip().startswith('{"'))
    tests = json.loads(script)[""]["tests"]
    assert tests == [p["test"] for p in data["timeline"]]


def test_a_clean_run_says_the_counts_did_not_change(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_it="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    pytester.makeini("[pytest]\nleakguard_html = clean.html\n")
    result = pytester.runpytest_subprocess(
        *QUIET, "--leakguard", "-o", "leakguard_trackers=threads"
    )
    result.assert_outcomes(passed=2)
    page = parse(Path(pytester.path, "clean.html"))
    text = "".join(page.text)
    assert "2 checked tests; no leaks" in text
    assert "unchanged throughout: threads 1" in text
    assert not [a for tag, a in page.tags if tag == "svg" and "data-kind" in a]


def test_under_xdist_each_worker_has_its_own_timeline_and_every_leak_is_there(
    pytester: pytest.Pytester,
) -> None:
    result = run_suite(pytester, "--leakguard-html", "leaks.html", "-n", "2")
    result.assert_outcomes(passed=5, errors=3)
    data = json.loads(Path(pytester.path, "out.json").read_text())
    workers: dict[str, list[int]] = {}
    for point in data["timeline"]:
        workers.setdefault(point["worker"], []).append(point["index"])
    assert sorted(workers) == ["gw0", "gw1"]
    for indexes in workers.values():
        assert indexes == list(range(len(indexes)))  # each in its own run order
    assert sorted(p["test"].split("::")[1] for p in data["timeline"]) == [
        "test_clean", "test_clean_again", "test_file", "test_port", "test_thread",
    ]  # fmt: skip
    page = parse(Path(pytester.path, "leaks.html"))
    text = "".join(page.text)
    sections = [
        str(a["data-worker"]) for tag, a in page.tags if tag == "section" and "data-worker" in a
    ]
    assert sorted(sections) == ["gw0", "gw1"]
    for finding in data["findings"]:
        for leak in finding["leaks"]:
            assert leak["description"] in text


@pytest.mark.parametrize(
    "how", [("--leakguard-html", "."), ("-o", "leakguard_html=.")], ids=["cli", "ini"]
)
def test_an_unwritable_html_path_is_a_usage_error_at_start_up(
    pytester: pytest.Pytester, how: tuple[str, str]
) -> None:
    pytester.makepyfile(test_it="def test_a():\n    pass\n")
    result = pytester.runpytest_subprocess(*QUIET, "--leakguard", *how)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*leakguard_html: cannot write '.': '.' is a directory*"])

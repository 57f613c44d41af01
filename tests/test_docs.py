"""The code in README.md and docs/ runs, and every report the docs show is what leakguard prints.

A block of Python runs as it is shown (a block opened by a comment naming a file is that file,
checked by the tests of that example). A report block is compared with the output of the same
scenario, run for real: numbers (pids, ports, descriptor numbers) and column widths may differ,
nothing else.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.options import QUIET

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.DOTALL | re.MULTILINE)


def blocks(language: str) -> list[tuple[str, str]]:
    """``(where, code)`` of every fenced block in ``language`` in the docs."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in BLOCK.finditer(text):
            if match.group(2) == language:
                line = text.count("\n", 0, match.start()) + 1
                code = textwrap.dedent(match.group(3))
                found.append((f"{doc.relative_to(ROOT)}:{line}", code))
    return found


def shows_a_file(code: str) -> bool:
    """A block that opens with ``# path/to/file.py`` shows that file (checked where it runs)."""
    first = code.splitlines()[0] if code.strip() else ""
    return bool(re.match(r"# (docs/)?examples/\S+\.py", first))


STANDALONE = [(where, code) for where, code in blocks("python") if not shows_a_file(code)]


@pytest.mark.parametrize(("where", "code"), STANDALONE, ids=[w for w, _ in STANDALONE])
def test_every_standalone_python_block_in_the_docs_runs(
    where: str, code: str, tmp_path: Path
) -> None:
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, f"{where}:\n{proc.stdout}\n{proc.stderr}"


def test_the_readme_check_example_reports_the_thread_it_forgets(tmp_path: Path) -> None:
    ((where, code),) = [(w, c) for w, c in STANDALONE if w.startswith("README.md")]
    script = tmp_path / "block.py"
    script.write_text(code, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert "leaked 1 resource" in proc.stdout, where
    assert "thread 'worker'" in proc.stdout, where


def test_a_block_showing_an_example_file_shows_it_as_it_is() -> None:
    shown = [(w, c) for w, c in blocks("python") if shows_a_file(c)]
    assert shown
    for where, code in shown:
        first, _, body = code.partition("\n")
        name = first[2:].split()[0].removeprefix("docs/")
        source = (ROOT / "docs" / name).read_text(encoding="utf-8")
        # The doc may leave out the imports and comments; every line it shows is in the file.
        for line in body.splitlines():
            assert line in source.splitlines(), f"{where}: {line!r} is not in {name}"


def report_block(doc: str, first_line: str) -> list[str]:
    """The lines of the report block in ``doc`` that starts with ``first_line``."""
    for where, code in blocks(""):
        lines = code.splitlines()
        if not where.split(":")[0].endswith(doc):
            continue
        if lines and lines[0] == first_line:
            return lines
    raise AssertionError(f"no report starting {first_line!r} in {doc}")


def pattern_of(line: str) -> re.Pattern[str]:
    """A doc line as a pattern: any number for a number, any spacing for a run of spaces, any
    folder for ``/tmp/x/``."""
    parts = []
    for token in re.split(r"(\d+|\s{2,}|/tmp/x/)", line):
        if not token:
            continue
        if token.isdigit():
            parts.append(r"\d+")
        elif token == "/tmp/x/":
            parts.append(r"/\S*/")
        elif token.isspace():
            parts.append(r"\s+")
        else:
            parts.append(re.escape(token))
    return re.compile("".join(parts) + "$")


def assert_shown(doc_lines: list[str], output: list[str]) -> None:
    at = 0
    for line in doc_lines:
        pattern = pattern_of(line)
        while at < len(output) and not pattern.match(output[at]):
            at += 1
        assert at < len(output), f"not printed (in this order): {line!r}\n" + "\n".join(output)
        at += 1


def test_the_report_in_the_configuration_reference_is_real(pytester: pytest.Pytester) -> None:
    pytester.mkpydir("myapp")
    # A non-daemon worker that outlives the test (the run waits for it at exit: keep it short).
    pytester.path.joinpath("myapp", "server.py").write_text(
        "import time\n\n\ndef serve():\n    time.sleep(1.5)\n"
    )
    tests = pytester.mkdir("tests")
    tests.joinpath("test_api.py").write_text(
        "import subprocess\nimport threading\n\nfrom myapp.server import serve\n"
        + "#\n" * 6
        + "def test_start_server():\n"
        + "    threading.Thread(target=serve, name='http-worker').start()\n"  # line 12
        + "    #\n    #\n"
        + "    subprocess.Popen(['sleep', '30'])\n"  # line 15
    )
    result = pytester.runpytest_subprocess(*QUIET, "--leakguard", "-o", "leakguard_grace=0.1")
    doc = report_block(
        "configuration.md", "leakguard: tests/test_api.py::test_start_server leaked 2 resources"
    )
    assert_shown(doc, result.outlines)


def test_the_report_in_the_descriptors_page_is_real(pytester: pytest.Pytester) -> None:
    pytester.mkpydir("myapp")
    pytester.path.joinpath("myapp", "server.py").write_text(
        "import socket\n"
        + "#\n" * 36
        + "def start():\n"  # line 38
        + "    #\n"
        + "    return socket.create_server(('127.0.0.1', 0))\n"  # line 40
    )
    tests = pytester.mkdir("tests")
    tests.joinpath("test_api.py").write_text(
        "from myapp.server import start\n\nKEEP = []\n"
        + "#\n" * 6
        + "def test_start_server(tmp_path):\n"
        + "    KEEP.append(start())\n"
        + "    KEEP.append(open(tmp_path / 'data.log', 'w'))\n"  # line 12
    )
    result = pytester.runpytest_subprocess(
        *QUIET, "--leakguard", "-o", "leakguard_grace=0.05", "-W", "ignore::ResourceWarning"
    )
    doc = report_block(
        "descriptors.md", "leakguard: tests/test_api.py::test_start_server leaked 2 resources"
    )
    assert_shown(doc, result.outlines)


def test_the_report_in_the_tasks_page_is_real(pytester: pytest.Pytester) -> None:
    pytester.mkpydir("myapp")
    pytester.path.joinpath("myapp", "poller.py").write_text(
        "import asyncio\n"
        + "#\n" * 27
        + "async def poll_forever():\n    await asyncio.sleep(3600)\n"
    )
    tests = pytester.mkdir("tests")
    tests.joinpath("test_poll.py").write_text(
        "import asyncio\n\nimport pytest\n\nfrom myapp.poller import poll_forever\n"
        + "#\n" * 4
        + "@pytest.mark.asyncio\n"
        + "async def test_poller():\n"
        + "    asyncio.create_task(poll_forever(), name='Task-7')\n"  # line 12
    )
    result = pytester.runpytest_subprocess(
        *QUIET, "--leakguard", "-o", "leakguard_grace=0.05", "-p", "asyncio"
    )
    doc = report_block("tasks.md", "leakguard: tests/test_poll.py::test_poller leaked 1 resource")
    assert_shown(doc, result.outlines)

"""docs/how-to/migrate-from-threadleak.md and docs/reference/ini-example.md, run as shown."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.support.options import QUIET

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES = DOCS / "examples"


@pytest.mark.parametrize(
    ("page", "folder"),
    [("how-to/migrate-from-threadleak.md", "threadleak"), ("reference/ini-example.md", "ini")],
)
def test_the_page_shows_every_example_file_as_it_is(page: str, folder: str) -> None:
    doc = (DOCS / page).read_text()
    pattern = rf"```(?:python|ini)\n# (examples/{folder}/\S+)\n(.*?)```"
    shown = dict(re.findall(pattern, doc, re.DOTALL))
    on_disk = {
        str(p.relative_to(DOCS)): p.read_text().split("\n", 1)[1]
        for p in (EXAMPLES / folder).iterdir()
    }
    assert sorted(shown) == sorted(on_disk)
    for name, text in on_disk.items():
        assert shown[name] == text, f"{name} differs from {page}"


def test_the_migrated_ini_and_markers_behave_as_pytest_threadleaks_did(
    pytester: pytest.Pytester,
) -> None:
    shutil.copy(EXAMPLES / "threadleak" / "test_workers.py", pytester.path)
    shutil.copy(EXAMPLES / "threadleak" / "leakguard.ini", pytester.path / "pytest.ini")
    args = (*QUIET, "--strict-config", "--strict-markers", "-o", "leakguard_grace=0.05")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=5, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leak*"])
    # Control: without the ini's ignore lines the pool worker and the daemon are leaks too
    # (the marker's own ignore line still lets test_marker_exclude pass).
    result = pytester.runpytest_subprocess(*args, "-o", "leakguard_ignore=")
    result.assert_outcomes(passed=5, errors=3)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_pool_worker*", "*ERROR at teardown of test_daemon*"]
    )


def test_the_ini_example_is_valid_and_its_ignore_lines_work(pytester: pytest.Pytester) -> None:
    shutil.copy(EXAMPLES / "ini" / "pytest.ini", pytester.path / "pytest.ini")
    pytester.makepyfile(
        test_it="""
        import threading
        STOP = threading.Event()

        def test_exporter():
            threading.Thread(target=STOP.wait, args=(1,), name="metrics-exporter", daemon=True).start()

        def test_other():
            threading.Thread(target=STOP.wait, args=(1,), name="other", daemon=True).start()
        """
    )
    result = pytester.runpytest_subprocess(*QUIET, "-o", "leakguard_grace=0.05")
    result.stdout.fnmatch_lines(
        ["leakguard: on; trackers: threads tasks processes sockets ports fds; action: fail; *"]
    )
    # The ignored thread passes; its control, the same thread under another name, errors.
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_other*"])
    assert (pytester.path / "build" / "leakguard.json").exists()

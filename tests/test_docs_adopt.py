"""docs/how-to/adopt.md, step by step: report, baseline, ratchet, strict, as the how-to shows."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.support.options import QUIET

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES = DOCS / "examples" / "adopt"
SHORT = ("-o", "leakguard_grace=0.05")


def test_the_how_to_shows_every_example_file_as_it_is() -> None:
    doc = (DOCS / "how-to" / "adopt.md").read_text()
    shown = dict(re.findall(r"```(?:python|ini)\n# (examples/adopt/\S+)\n(.*?)```", doc, re.DOTALL))
    on_disk = {
        str(p.relative_to(DOCS)): p.read_text().split("\n", 1)[1] for p in EXAMPLES.iterdir()
    }
    assert sorted(shown) == sorted(on_disk)
    for name, text in on_disk.items():
        assert shown[name] == text, f"{name} differs from the how-to"


def _project(pytester: pytest.Pytester, step: str, tests: str = "test_app.py") -> Path:
    for name in ("app.py", tests):
        shutil.copy(EXAMPLES / name, pytester.path / name)
    if tests != "test_app.py":
        (pytester.path / tests).rename(pytester.path / "test_app.py")
    shutil.copy(EXAMPLES / f"{step}.ini", pytester.path / "pytest.ini")
    return pytester.path


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(*QUIET, *SHORT, "--strict-config", *args)


def test_step1_report_mode_lists_the_leaks_and_fails_nothing(pytester: pytest.Pytester) -> None:
    path = _project(pytester, "step1-report")
    result = _run(pytester)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        [
            "2 owners leaked 2 resources (fds: 1, threads: 1)",
            "test_app.py::test_poller_legacy [[]report]",
            "test_app.py::test_audit_log [[]report]",
        ]
    )
    result.stdout.no_fnmatch_line("*metrics-exporter*")
    owners = [
        f["owner"] for f in json.loads((path / "leakguard-report.json").read_text())["findings"]
    ]
    assert owners == ["test_app.py::test_poller_legacy", "test_app.py::test_audit_log"]
    # Control: without the ignore lines the exporter thread is reported too.
    result = _run(pytester, "-o", "leakguard_ignore=")
    result.stdout.fnmatch_lines(["test_app.py::test_metrics [[]report]", "*metrics-exporter*"])


def test_step2_the_baseline_passes_known_leaks_and_fails_a_new_one(
    pytester: pytest.Pytester,
) -> None:
    path = _project(pytester, "step2-baseline")
    record = _run(pytester, "--leakguard-update-baseline")
    record.stdout.fnmatch_lines(["baseline written: 2 known leaks in leakguard-baseline.json"])
    assert len(json.loads((path / "leakguard-baseline.json").read_text())["known"]) == 2
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["test_app.py::test_poller_legacy [[]baseline]"])
    # A test added later, with a leak of its own, fails at once.
    shutil.copy(EXAMPLES / "test_new.py", path / "test_new.py")
    result = _run(pytester)
    result.assert_outcomes(passed=5, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_new_feature*"])


def test_step3_the_ratchet_notices_fixed_leaks_and_the_file_shrinks(
    pytester: pytest.Pytester,
) -> None:
    path = _project(pytester, "step2-baseline")
    _run(pytester, "--leakguard-update-baseline")
    _project(pytester, "step2-baseline", tests="test_app_fixed.py")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "baseline: 2 of 2 known leaks not seen in this run "
            "(fixed? after a full run, shrink the file: --leakguard-update-baseline)"
        ]
    )
    _run(pytester, "--leakguard-update-baseline").stdout.fnmatch_lines(
        ["baseline written: 0 known leaks in leakguard-baseline.json"]
    )
    assert json.loads((path / "leakguard-baseline.json").read_text())["known"] == []


def test_step4_strict_passes_once_the_leaks_are_fixed(pytester: pytest.Pytester) -> None:
    _project(pytester, "step4-strict", tests="test_app_fixed.py")
    result = _run(pytester)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=4)
    # Control: strict on the unfixed tests fails both leaks.
    _project(pytester, "step4-strict")
    _run(pytester).assert_outcomes(passed=4, errors=2)

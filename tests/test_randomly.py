"""pytest-randomly: inner runs keep their order unless asked; the reproduce line under it."""

from __future__ import annotations

import re

import pytest

from tests.support.options import SHORT_GRACE

PROBE = """
def test_probe(pytestconfig):
    active = pytestconfig.pluginmanager.has_plugin("randomly")
    print(f"randomly active: {active}")
"""


@pytest.mark.parametrize("how", ["in-process", "subprocess"])
def test_inner_runs_have_pytest_randomly_off_unless_the_test_asks(
    pytester: pytest.Pytester, how: str
) -> None:
    pytester.makepyfile(test_it=PROBE)
    run = pytester.runpytest if how == "in-process" else pytester.runpytest_subprocess
    # No QUIET here on purpose: the guard in conftest.py must cover a bare inner run.
    result = run("-s", "-p", "no:cacheprovider", "-p", "no:asyncio")
    result.stdout.fnmatch_lines(["*randomly active: False*"])
    # Control: asking for it turns it on, so the probe can tell.
    result = run("-s", "-p", "no:cacheprovider", "-p", "no:asyncio", "-p", "randomly")
    result.stdout.fnmatch_lines(["*randomly active: True*"])


def test_inner_xdist_workers_have_pytest_randomly_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_it=PROBE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "1", "-rP")
    result.stdout.fnmatch_lines(["*randomly active: False*"])
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-p", "randomly", "-n", "1", "-rP"
    )
    result.stdout.fnmatch_lines(["*randomly active: True*"])


LEAKY = """
import threading
STOP = threading.Event()

def test_leaks():
    threading.Thread(target=STOP.wait, args=(2,), name="w", daemon=True).start()
"""


def _run(pytester: pytest.Pytester, *extra: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "--leakguard", "-p", "no:cacheprovider", "-p", "no:asyncio", "-o", "leakguard_trackers=threads",
        *SHORT_GRACE, *extra,
    )  # fmt: skip


def test_the_reproduce_line_turns_pytest_randomly_off_only_when_it_is_active(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_it=LEAKY)
    result = _run(pytester, "-p", "randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["reproduce: pytest test_it.py::test_leaks --leakguard -p no:randomly"]
    )
    # Control: without the plugin the flag would be a usage error, so it is not there.
    result = _run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["reproduce: pytest test_it.py::test_leaks --leakguard"])
    result.stdout.no_fnmatch_line("reproduce:*randomly*")


ORDERED = """
import threading
STOP = threading.Event()

def test_{0}():
    threading.Thread(target=STOP.wait, args=(3,), name="{0}", daemon=True).start()
"""


def _residue_suite(pytester: pytest.Pytester) -> None:
    # Several modules: pytest-randomly orders modules, then the tests within each.
    for name in ("alpha", "bravo", "charlie", "delta"):
        pytester.makepyfile(**{f"test_{name}": ORDERED.format(name)})


def test_under_random_order_the_reproduce_line_gives_the_seed_and_the_earlier_tests(
    pytester: pytest.Pytester,
) -> None:
    _residue_suite(pytester)
    result = _run(pytester, "-p", "randomly", "--randomly-seed=4242")
    result.assert_outcomes(passed=4, errors=4)
    lines = [line for line in result.outlines if line.startswith("reproduce: ")]
    assert len(lines) == 4
    last = max(lines, key=len)
    assert last.endswith(" --leakguard -p randomly --randomly-seed=4242"), last
    ids = re.findall(r"test_\w+\.py::test_\w+", last)
    assert len(ids) == 4
    # The ids are in the order they ran, and the line replays that order: run it.
    replay = _run(pytester, *ids, "-p", "randomly", "--randomly-seed=4242", "-v")
    ran = [line.split(" ")[0] for line in replay.outlines if " PASSED" in line]
    assert ran == ids
    # Control: the first test ran with no residue, so its line has neither ids nor seed.
    first = min(lines, key=len)
    assert first.endswith(" --leakguard -p no:randomly"), first


def test_without_random_order_the_earlier_tests_come_with_p_no_randomly(
    pytester: pytest.Pytester,
) -> None:
    _residue_suite(pytester)
    result = _run(pytester, "-p", "randomly", "--randomly-dont-reorganize")
    result.assert_outcomes(passed=4, errors=4)
    result.stdout.fnmatch_lines(
        [
            "reproduce: pytest test_alpha.py::test_alpha test_bravo.py::test_bravo "
            "--leakguard -p no:randomly"
        ]
    )
    result.stdout.no_fnmatch_line("reproduce:*--randomly-seed*")

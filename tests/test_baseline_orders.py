"""A baseline recorded in one process, in file order, holds however the suite is run again."""

from __future__ import annotations

import pytest

SUITE = {
    "test_files": """
        KEEP = []

        def test_leaks_a_file(tmp_path):
            KEEP.append(open(tmp_path / "data.log", "w"))

        def test_clean_one():
            pass
        """,
    "test_threads": """
        import threading
        STOP = threading.Event()

        def test_leaks_a_thread():
            threading.Thread(target=STOP.wait, args=(3,), daemon=True).start()

        def test_clean_two():
            pass
        """,
    "test_fixture": """
        import threading, pytest
        STOP = threading.Event()

        @pytest.fixture(scope="module")
        def server():
            threading.Thread(target=STOP.wait, args=(3,), name="srv", daemon=True).start()
            yield

        def test_uses_server(server):
            pass

        def test_uses_server_too(server):
            pass

        def test_clean_three():
            pass
        """,
}

BASE = ("--leakguard", "-p", "no:asyncio", "-o", "leakguard_trackers=threads fds",
        "-o", "leakguard_grace=0.05", "--leakguard-baseline", "base.json")  # fmt: skip


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> pytest.Pytester:
    """The suite, and its baseline recorded with -n 0 and pytest-randomly off."""
    pytester.makepyfile(**SUITE)
    result = pytester.runpytest_subprocess(
        *BASE, "-n", "0", "-p", "no:randomly", "--leakguard-update-baseline"
    )
    result.assert_outcomes(passed=7, errors=3)
    result.stdout.fnmatch_lines(["baseline written: 3 known leaks in base.json"])
    return pytester


def _holds(pytester: pytest.Pytester, *extra: str) -> pytest.RunResult:
    result = pytester.runpytest_subprocess(*BASE, *extra)
    assert result.ret == pytest.ExitCode.OK, (extra, result.stdout.str())
    result.stdout.no_fnmatch_line("*[[]fail]*")
    result.stdout.fnmatch_lines(["*[[]baseline]"])
    return result


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(("-p", "randomly", "--randomly-seed=1"), id="randomly-seed-1"),
        pytest.param(("-p", "randomly", "--randomly-seed=987654"), id="randomly-seed-987654"),
        pytest.param(("-n", "2"), id="xdist"),
        pytest.param(("-n", "2", "-p", "randomly", "--randomly-seed=5"), id="xdist-randomly"),
        pytest.param(("-k", "leaks or server"), id="k"),
    ],
)
def test_a_baseline_recorded_in_file_order_holds(
    recorded: pytest.Pytester, extra: tuple[str, ...]
) -> None:
    result = _holds(recorded, *extra)
    if "randomly" in extra:  # the plugin really shuffled (not silently absent)
        result.stdout.fnmatch_lines(["Using --randomly-seed=*"])
    result.stdout.fnmatch_lines(
        ["*fixture 'server' (module-scoped in test_fixture.py) [[]baseline]"]
    )


def test_the_baseline_holds_under_last_failed(recorded: pytest.Pytester) -> None:
    # The recording run's errors are the last failures: --lf reruns just those three tests.
    result = _holds(recorded, "--lf")
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 3 failures*"])
    result.assert_outcomes(passed=3)


def test_without_the_baseline_the_same_runs_fail(recorded: pytest.Pytester) -> None:
    # Control: the runs above pass because of the baseline, not because nothing was found.
    (recorded.path / "base.json").unlink()
    for extra in (("-p", "randomly", "--randomly-seed=1"), ("-n", "2")):
        result = recorded.runpytest_subprocess(*BASE, *extra)
        assert result.ret == pytest.ExitCode.TESTS_FAILED, extra
        result.stdout.fnmatch_lines(
            ["*fixture 'server' (module-scoped in test_fixture.py) [[]fail]"]
        )

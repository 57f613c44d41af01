"""Each way of turning leakguard on (and off), from the contract's table."""

from __future__ import annotations

import pytest

from tests.conftest import RunLeakguard
from tests.support.options import QUIET

LEAKY_TEST = """
from leaky import start_leaky

def test_leaky():
    start_leaky()
"""


@pytest.fixture
def leaky_test(pytester: pytest.Pytester, leaky_module: None) -> None:
    pytester.makepyfile(test_it=LEAKY_TEST)


def test_installed_plugin_is_dormant_until_turned_on(
    run_leakguard: RunLeakguard, leaky_test: None
) -> None:
    result = run_leakguard(on=False)
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*leakguard: test_it.py::test_leaky leaked*")


def test_cli_flag_turns_checking_on(run_leakguard: RunLeakguard, leaky_test: None) -> None:
    result = run_leakguard()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_leaky*", "leakguard: test_it.py::test_leaky leaked 1 resource"]
    )


def test_ini_option_turns_checking_on(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_test: None
) -> None:
    pytester.makeini("[pytest]\nleakguard = true\n")
    result = run_leakguard(on=False)
    result.assert_outcomes(passed=1, errors=1)


def test_pyproject_table_turns_checking_on(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_test: None
) -> None:
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\nleakguard = true\n")
    result = run_leakguard(on=False)
    result.assert_outcomes(passed=1, errors=1)


def test_no_leakguard_flag_wins_over_the_ini(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_test: None
) -> None:
    pytester.makeini("[pytest]\nleakguard = true\n")
    result = run_leakguard("--no-leakguard", on=False)
    result.assert_outcomes(passed=1)


def test_disabling_the_plugin_removes_it(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_test: None
) -> None:
    pytester.makeini("[pytest]\nleakguard = true\n")
    result = run_leakguard("-p", "no:leakguard", on=False, trackers=None)
    # The ini key is unknown without the plugin: pytest only warns about it.
    result.assert_outcomes(passed=1)


def test_autouse_module_in_root_conftest_checks_every_test(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_test: None
) -> None:
    pytester.makeconftest('pytest_plugins = ["leakguard.autouse"]\n')
    result = run_leakguard(on=False)
    result.assert_outcomes(passed=1, errors=1)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param(
            "import pytest\nfrom leaky import start_leaky\n\n@pytest.mark.leakguard\ndef test_leaky():\n    start_leaky()\n",
            id="on-the-test",
        ),
        pytest.param(
            "import pytest\nfrom leaky import start_leaky\n\n@pytest.mark.leakguard\nclass TestLeaky:\n    def test_leaky(self):\n        start_leaky()\n",
            id="on-the-class",
        ),
        pytest.param(
            "import pytest\nfrom leaky import start_leaky\npytestmark = pytest.mark.leakguard\n\ndef test_leaky():\n    start_leaky()\n",
            id="on-the-module",
        ),
    ],
)
def test_leakguard_marker_checks_a_test_when_off_globally(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_module: None, source: str
) -> None:
    pytester.makepyfile(
        test_it=source,
        test_other="from leaky import start_leaky\n\ndef test_unmarked_leaks_unseen():\n    start_leaky()\n",
    )
    result = run_leakguard(on=False)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of *test_leaky*"])


def test_requesting_the_fixture_turns_checking_on(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_module: None
) -> None:
    pytester.makepyfile(
        test_it="""
        from leaky import start_leaky

        def test_with_fixture(leakguard):
            start_leaky()

        def test_without_fixture():
            start_leaky()
        """
    )
    result = run_leakguard(on=False)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_with_fixture*"])


def test_fixture_requested_by_an_autouse_conftest_fixture_checks_the_tests_below(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_module: None
) -> None:
    sub = pytester.mkpydir("checked")
    sub.joinpath("conftest.py").write_text(
        "import pytest\n\n@pytest.fixture(autouse=True)\ndef _checked(leakguard):\n    yield\n"
    )
    sub.joinpath("test_a.py").write_text(
        "from leaky import start_leaky\n\ndef test_a():\n    start_leaky()\n"
    )
    pytester.makepyfile(
        test_b="from leaky import start_leaky\n\ndef test_b():\n    start_leaky()\n"
    )
    result = run_leakguard(on=False)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_a*"])


def test_report_header_says_what_is_active(run_leakguard: RunLeakguard, leaky_test: None) -> None:
    result = run_leakguard("-o", "leakguard_action=warn")
    result.stdout.fnmatch_lines(
        ["leakguard: on; trackers: threads; action: warn; grace: 0.05s; cleanup: on"]
    )


def test_report_header_when_off(run_leakguard: RunLeakguard, leaky_test: None) -> None:
    result = run_leakguard(on=False)
    result.stdout.fnmatch_lines(
        ["leakguard: off (marked tests and tests using the leakguard fixture are checked)"]
    )


def test_markers_are_registered_for_strict_markers(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    pytester.makepyfile(
        test_it="""
        import pytest

        @pytest.mark.leakguard(grace=0.1)
        @pytest.mark.no_resource_tracking("processes")
        def test_marked():
            pass
        """
    )
    result = run_leakguard(
        "--strict-markers", "-W", "error::pytest.PytestUnknownMarkWarning", on=False
    )
    result.assert_outcomes(passed=1)


def test_no_per_test_hooks_run_when_no_collected_test_is_checked(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    # Installed but off must cost nothing per test: the per-test hooks are not even registered.
    pytester.makepyfile(
        test_it="""
        PER_TEST = (
            "pytest_runtest_setup", "pytest_runtest_teardown", "pytest_runtest_makereport",
            "pytest_runtest_logreport", "pytest_fixture_setup", "pytest_fixture_post_finalizer",
        )

        def test_hooks_absent(request):
            plugins = request.config.pluginmanager
            ours = [
                (name, plugins.get_name(impl.plugin))
                for name in PER_TEST
                for impl in getattr(request.config.hook, name).get_hookimpls()
                if "leakguard" in (plugins.get_name(impl.plugin) or "")
            ]
            assert ours == []
        """
    )
    run_leakguard(on=False).assert_outcomes(passed=1)
    run_leakguard().assert_outcomes(failed=1)


# Which of leakguard's modules a run has loaded, seen from its last test.
MODULE_PROBE = """
import sys

import pytest

MACHINERY = ("leakguard.core.engine", "leakguard.core.runstate", "leakguard.plugin.checking")

def test_zz_probe():
    loaded = [name for name in MACHINERY if name in sys.modules]
    print("machinery loaded:", loaded or "none")
"""


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("nothing checked", "*machinery loaded: none"),
        # The control: a marked test loads the machinery, so the probe can see it.
        ("one marked test", "*machinery loaded: *leakguard.core.engine*"),
    ],
)
def test_installed_and_off_imports_none_of_the_runs_machinery(
    pytester: pytest.Pytester, case: str, expected: str
) -> None:
    # Every run in an environment with leakguard installed imports its entry point; a run that
    # checks nothing must not pay for the engine and the trackers (≈ 20 ms of start-up).
    marked = "@pytest.mark.leakguard(trackers=['threads'])\n" if case == "one marked test" else ""
    pytester.makepyfile(test_it=f"import pytest\n\n{marked}def test_a():\n    pass\n")
    pytester.makepyfile(test_zz=MODULE_PROBE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "-q")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([expected])


def test_the_report_hooks_join_only_once_something_leaked(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_module: None
) -> None:
    # Until the first leak no report has a leak to carry, and no failing test has residue or an
    # earlier leak's aftermath to explain: no test pays for a makereport wrapper around each of
    # its phases, nor for a logreport hook on each of its three reports.
    pytester.makepyfile(
        test_it="""
        from leaky import start_leaky

        def ours(request):
            plugins = request.config.pluginmanager
            hooks = request.config.hook
            names = [
                plugins.get_name(impl.plugin)
                for hook in (hooks.pytest_runtest_makereport, hooks.pytest_runtest_logreport)
                for impl in hook.get_hookimpls()
                if "leakguard" in (plugins.get_name(impl.plugin) or "")
            ]
            return " ".join(sorted(names)) or "none"

        def test_a_before_any_leak(request):
            print("before:", ours(request))

        def test_b_leaks():
            start_leaky(seconds=0.5)

        def test_c_after_a_leak(request):
            print("after:", ours(request))
        """
    )
    result = run_leakguard("-s")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        ["*before: none*", "*after: leakguard-polluters leakguard-test-reports*"]
    )
    result.stdout.fnmatch_lines(["*= leakguard =*", "*test_b_leaks*"])  # the summary has it


def test_the_fixture_end_hook_joins_with_the_first_fixture_that_owns_something(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard
) -> None:
    # Every fixture's teardown calls pytest_fixture_post_finalizer: leakguard's joins only when
    # a longer-lived fixture has something whose end it must check.
    pytester.makepyfile(
        test_it="""
        import threading
        import pytest

        def ours(request):
            plugins = request.config.pluginmanager
            hook = request.config.hook.pytest_fixture_post_finalizer
            names = [plugins.get_name(impl.plugin) for impl in hook.get_hookimpls()]
            return " ".join(n for n in names if "leakguard" in (n or "")) or "none"

        @pytest.fixture(scope="module")
        def worker():
            stop = threading.Event()
            thread = threading.Thread(target=stop.wait, name="module-worker")
            thread.start()
            yield thread
            stop.set()
            thread.join()

        def test_a_plain(request):
            print("before:", ours(request))

        def test_b_with_the_fixture(request, worker):
            print("after:", ours(request))
        """
    )
    result = run_leakguard("-s", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*before: none*", "*after: leakguard-fixture-ends*"])


def test_in_process_runs_one_after_another_each_see_the_leak(
    pytester: pytest.Pytester, run_leakguard: RunLeakguard, leaky_module: None
) -> None:
    # pytester restores sys.modules after each in-process run: the machinery a run imported is
    # gone, but its package attributes were left behind, and the next run mixed two copies of
    # the lineage (a thread stamped by one, looked up in the other): the leak went unseen.
    pytester.makepyfile(
        test_it="""
        import pytest
        from leaky import start_leaky

        @pytest.mark.leakguard
        def test_leaky():
            start_leaky(seconds=0.5)
        """
    )
    for _ in range(3):
        run_leakguard(on=False).assert_outcomes(passed=1, errors=1)


def test_a_thread_an_earlier_in_process_run_left_is_not_the_next_runs_test(
    pytester: pytest.Pytester,
) -> None:
    # Each in-process run gets its own copy of leakguard (pytester unloads it after the run),
    # and its epochs used to start again at 1: a thread the first run left, stamped with that
    # run's epoch, read as the second run's test's, and the file it opened then was blamed on
    # a test that opened nothing.
    inner = """
import os, threading, time
import pytest

KEEP = []

def opens_later():
    time.sleep(0.5)
    KEEP.append(open(os.devnull))
    time.sleep(5)

@pytest.mark.skipif(os.environ.get("RUN") != "second", reason="second run only")
def test_opens_nothing():
    time.sleep(1.0)

@pytest.mark.parametrize("i", range(5))
def test_filler(i):
    pass

@pytest.mark.skipif(os.environ.get("RUN") != "first", reason="first run only")
def test_leaves_a_thread():
    threading.Thread(target=opens_later, daemon=True).start()
"""
    pytester.makepyfile(
        test_outer=f"""
        pytest_plugins = ["pytester"]

        INNER = {inner!r}
        ARGS = ("-p", "no:cacheprovider", "-p", "no:randomly", "--leakguard",
                "-o", "leakguard_trackers=threads fds", "-o", "leakguard_grace=0.05")

        def test_two_runs(pytester, monkeypatch):
            pytester.makepyfile(test_inner=INNER)
            monkeypatch.setenv("RUN", "first")
            pytester.runpytest(*ARGS).assert_outcomes(passed=6, skipped=1, errors=1)
            monkeypatch.setenv("RUN", "second")
            pytester.runpytest(*ARGS).assert_outcomes(passed=6, skipped=1)
        """
    )
    pytester.runpytest_subprocess(*QUIET).assert_outcomes(passed=1)

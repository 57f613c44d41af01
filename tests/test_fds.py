"""The fds tracker: files, pipes and other non-socket descriptors a test leaves open."""

from __future__ import annotations

import os
import threading
from functools import partial

import pytest

from leakguard.trackers.descriptors.scan import scan_fds
from tests.support.options import QUIET, run_checked
from tests.support.outcomes import assert_leaked
from tests.support.pairs import run_pair

# Keyword "trackers" overrides the default per call.
run = partial(run_checked, trackers="fds")


def test_file_left_open_is_reported_with_path_and_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        def test_leaky(tmp_path):
            global f
            f = open(tmp_path / "data.log", "w")
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaky*",
            "leakguard: test_it.py::test_leaky leaked 1 resource",
            "  fd * file */data.log (mode w)   opened at test_it.py:3 in test_leaky",
            "cleanup: fd * closed (through its TextIOWrapper)",
        ]
    )


def test_file_closed_by_the_test_is_not_a_leak(pytester: pytest.Pytester) -> None:
    pair = run_pair(
        pytester,
        partial(run, pytester),
        test_it="""
        def test_tidy(tmp_path):
            global f
            f = open(tmp_path / "data.log", "w")
            f.write("x")
            f.close()  # case only
        """,
    )
    pair.control.assert_outcomes(passed=1, errors=1)
    pair.control.stdout.fnmatch_lines(
        ["  fd * file */data.log (mode w)   opened at test_it.py:3 in test_tidy"]
    )
    pair.case.assert_outcomes(passed=1)


def test_pipe_left_open_is_reported_with_both_ends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import os

        def test_leaky():
            global ends
            ends = os.pipe()
        """
    )
    result = run(pytester)
    assert_leaked(
        result,
        "test_it.py::test_leaky",
        [
            "  fd * pipe:[[]*[]] (read end)    opened at test_it.py:5 in test_leaky",
            "  fd * pipe:[[]*[]] (write end)   opened at test_it.py:5 in test_leaky",
        ],
    )


@pytest.mark.parametrize(
    ("make", "label"),
    [
        pytest.param("os.eventfd(0)", "eventfd", id="eventfd"),
        pytest.param("os.memfd_create('blob')", "memfd blob", id="memfd"),
        pytest.param("select.epoll()", "epoll", id="epoll"),
        pytest.param("selectors.DefaultSelector()", "epoll", id="selector"),
        pytest.param("os.open(__file__, os.O_RDONLY)", "file */test_it.py (mode r)", id="os.open"),
    ],
)
def test_other_descriptor_kinds_left_open_are_reported(
    pytester: pytest.Pytester, make: str, label: str
) -> None:
    pytester.makepyfile(
        test_it=f"""
        import os, select, selectors

        def test_leaky():
            global thing
            thing = {make}
        """
    )
    result = run(pytester)
    assert_leaked(result, "test_it.py::test_leaky", [f"  fd * {label}*"])


def test_descriptor_closed_and_reopened_under_the_same_number_is_a_leak(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_it="""
        import os

        OLD = os.open(os.devnull, os.O_RDONLY)  # open before the test: not the test's

        def test_swaps_a_descriptor(tmp_path):
            os.close(OLD)
            fd = os.open(tmp_path / "new.txt", os.O_WRONLY | os.O_CREAT)
            assert fd == OLD  # the same number, a different file
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["  fd * file */new.txt (mode w)   opened at test_it.py:7 in test_swaps_a_descriptor"]
    )


def test_files_opened_at_import_time_are_not_blamed_nor_closed(pytester: pytest.Pytester) -> None:
    pair = run_pair(
        pytester,
        partial(run, pytester),
        test_it="""
        import os

        LOG = open(os.devnull, "w")  # case only

        def test_uses_it():
            global LOG  # control only
            LOG = open(os.devnull, "w")  # control only
            LOG.write("x")

        def test_it_is_still_open():
            assert not LOG.closed
        """,
    )
    # Control: the same file opened by the first test is its leak, and is closed.
    pair.control.assert_outcomes(passed=1, failed=1, errors=1)
    pair.control.stdout.fnmatch_lines(
        ["  fd * device /dev/null (mode w)   opened at test_it.py:* in test_uses_it"]
    )
    pair.case.assert_outcomes(passed=2)


def test_file_opened_by_a_module_fixture_belongs_to_the_fixture(pytester: pytest.Pytester) -> None:
    # The control makes the same fixture function-scoped and never closes its file: each
    # test's leak. The case closes it at the end of its longer scope.
    pair = run_pair(
        pytester,
        partial(run, pytester),
        test_it="""
        import os, pytest

        @pytest.fixture(scope="module")  # case only
        @pytest.fixture  # control only
        def log():
            f = open(os.devnull, "w")
            yield f
            f.close()  # case only

        def test_one(log):
            log.write("x")

        def test_two(log):
            assert not log.closed
        """,
    )
    assert_leaked(
        pair.control,
        "test_it.py::test_one",
        ["  fd * device /dev/null (mode w)*"],
        passed=2,
        errors=2,
    )
    pair.case.assert_outcomes(passed=2)


def test_output_capture_descriptors_are_not_blamed(pytester: pytest.Pytester) -> None:
    pair = run_pair(
        pytester,
        partial(run, pytester),
        test_it="""
        import os, sys
        KEEP = []

        def test_capfd(capfd):
            os.write(1, b"to fd 1")
            KEEP.append(os.fdopen(os.dup(1), "wb"))  # control only
            print("to sys.stdout")
            assert "fd 1" in capfd.readouterr().out

        def test_capsys(capsys):
            print("hello")
            assert capsys.readouterr().out == "hello\\n"

        def test_capfdbinary(capfdbinary):
            os.write(2, b"err")
        """,
    )
    # Control: a copy of the captured fd 1 that the test keeps is its leak.
    assert_leaked(
        pair.control,
        "test_it.py::test_capfd",
        ["  fd * opened at test_it.py:* in test_capfd"],
        passed=3,
        errors=1,
    )
    pair.case.assert_outcomes(passed=3)
    run(pytester, "-s").assert_outcomes(passed=3)
    run(pytester, "--capture=sys").assert_outcomes(passed=3)


def test_faulthandler_and_xdist_descriptors_are_not_blamed(pytester: pytest.Pytester) -> None:
    pair = run_pair(
        pytester,
        lambda: run(pytester, "-o", "faulthandler_timeout=60", "-p", "xdist", "-n", "2"),
        test_it="""
        import pytest
        KEEP = []

        @pytest.mark.parametrize("i", range(4))
        def test_clean(i):
            KEEP.append(open(__file__))  # control only
            pass
        """,
    )
    # Control: a file each test keeps is still found under xdist and faulthandler.
    pair.control.assert_outcomes(passed=4, errors=4)
    pair.control.stdout.fnmatch_lines(["*fd * file */test_it.py (mode r)*"])
    pair.case.assert_outcomes(passed=4)


def test_cleanup_closes_a_file_through_its_python_object(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        import os

        def test_leaky(tmp_path):
            global f, path
            path = tmp_path / "data.log"
            f = open(path, "w")
            f.write("buffered, not yet flushed")

        def test_after():
            # Closed through the object: flushed, and the object knows it is closed, so it will
            # never close the (since reused) number again.
            assert f.closed
            assert path.read_text() == "buffered, not yet flushed"
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["cleanup: fd * closed (through its TextIOWrapper)"])


def test_cleanup_never_closes_a_bare_number(pytester: pytest.Pytester) -> None:
    # Whoever holds the int may still use or close it: closing it here would let them hit
    # whatever file reuses the number. The leak is reported; the number stays theirs.
    pytester.makepyfile(
        test_it="""
        import os

        def test_leaky():
            global fd, ino
            fd = os.eventfd(0)
            ino = os.fstat(fd).st_ino

        def test_after():
            assert os.fstat(fd).st_ino == ino
            os.close(fd)
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  fd * eventfd   opened at test_it.py:5 in test_leaky",
            "cleanup: fd * left open: no Python object owns it (a bare number: leakguard never closes those)",
        ]
    )


def test_leak_is_found_when_the_process_is_out_of_descriptors(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import resource, pytest

        LIMITS = resource.getrlimit(resource.RLIMIT_NOFILE)

        @pytest.hookimpl(trylast=True)
        def pytest_runtest_logfinish():
            resource.setrlimit(resource.RLIMIT_NOFILE, LIMITS)  # after leakguard's check
        """
    )
    pytester.makepyfile(
        test_it="""
        import errno, os, resource

        def test_exhausts_descriptors(tmp_path):
            global f
            f = open(tmp_path / "data.log", "w")
            resource.setrlimit(resource.RLIMIT_NOFILE, (3, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
            try:
                os.open(os.devnull, os.O_RDONLY)
            except OSError as exc:
                assert exc.errno == errno.EMFILE
            else:
                raise AssertionError("expected EMFILE")
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "  fd * file */data.log (mode w)   opened at test_it.py:5 in test_exhausts_descriptors",
            "      snapshot taken without listing /proc/self/fd (EMFILE): probed * numbers",
            "cleanup: fd * closed (through its TextIOWrapper)",
        ]
    )


def test_scan_survives_descriptors_closing_while_it_runs() -> None:
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            os.close(os.open(os.devnull, os.O_RDONLY))

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(300):
            scan = scan_fds()
            assert scan.fds  # 0-2 at least; a descriptor gone mid-scan is skipped, not raised
    finally:
        stop.set()
        worker.join()


def test_multiprocessing_helpers_started_by_a_test_are_not_blamed_nor_closed(
    pytester: pytest.Pytester,
) -> None:
    pair = run_pair(
        pytester,
        lambda: run(pytester, trackers="ports fds"),
        test_it="""
        import multiprocessing as mp
        KEEP = []

        def double(x):
            return x * 2

        def test_first_user_starts_the_resource_tracker():
            with mp.get_context("spawn").Pool(1) as pool:
                assert pool.map(double, [1]) == [2]

        def test_later_user_still_has_it():
            proc = mp.get_context("forkserver").Process(target=double, args=(1,))
            proc.start()
            proc.join()
            assert proc.exitcode == 0
            KEEP.append(mp.Pipe(False))  # control only
        """,
    )
    # Control: a pipe the second test makes and keeps is its leak; the helpers' descriptors
    # (resource tracker, forkserver) are still not blamed.
    pair.control.assert_outcomes(passed=2, errors=1)
    pair.control.stdout.fnmatch_lines(
        ["leakguard: test_it.py::test_later_user_still_has_it leaked 2 resources"]
    )
    pair.case.assert_outcomes(passed=2)


def test_dup2_onto_an_existing_number_is_a_leak_though_the_numbers_are_unchanged(
    pytester: pytest.Pytester,
) -> None:
    # No new number appears: only the identity behind OLD changes. The scan must not trust
    # its previous identities here (os.dup2 counts as an opening).
    pytester.makepyfile(
        test_it="""
        import os, tempfile

        OLD = os.open(os.devnull, os.O_RDONLY)
        FILE = tempfile.TemporaryFile()

        def test_dup2_swap():
            os.dup2(FILE.fileno(), OLD)
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*leaked 1 resource", "  fd * file *"])


def test_descriptor_made_in_c_without_an_audit_event_is_still_found(
    pytester: pytest.Pytester,
) -> None:
    # select.epoll() raises no audit event and goes through no wrapper: only the scan's check
    # of which numbers are open can notice it.
    pytester.makepyfile(
        test_it="""
        import select
        KEEP = []

        def test_clean_first():
            pass

        def test_epoll_only():
            KEEP.append(select.epoll())
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*test_epoll_only leaked 1 resource", "  fd * epoll*"])


# Counts the end-of-test scans that list /proc/self/fd (``os.listdir`` raises an audit event).
LISTINGS = """
import sys
import pytest

LISTED = []

def count(event, args):
    if event == "os.listdir" and str(args[0]).endswith("/fd"):
        LISTED.append(1)

sys.addaudithook(count)

class AroundTheCheck:
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self, item):
        start = len(LISTED)
        try:
            return (yield)
        finally:
            print(f"\\n{item.name}: end-of-test listings {len(LISTED) - start}")

def pytest_collection_finish(session):
    # Registered after leakguard's hooks (which join at collection), so around its check.
    session.config.pluginmanager.register(AroundTheCheck())
"""


def test_a_test_that_opens_and_closes_a_few_descriptors_is_checked_without_a_listing(
    pytester: pytest.Pytester,
) -> None:
    # The numbers are proven unchanged by the probe (every opening took the lowest free
    # number), so only their identities are taken again; the closed socketpair is no leak.
    pytester.makeconftest(LISTINGS)
    pytester.makepyfile(
        test_it="""
        import os, socket

        def test_opens_and_closes():
            a, b = socket.socketpair()
            a.close()
            b.close()
            os.close(os.open(os.devnull, os.O_RDONLY))

        def test_leaves_one_open():
            global KEPT
            KEPT = socket.socketpair()
        """
    )
    result = run_checked(pytester, "-s", trackers="sockets fds")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_opens_and_closes: end-of-test listings 0",
            "*test_leaves_one_open: end-of-test listings *",
            "*test_leaves_one_open leaked 2 resources",
        ]
    )


def test_a_descriptor_put_on_a_number_of_its_own_is_found(pytester: pytest.Pytester) -> None:
    # dup2 onto a high number: no free number the probe watches is taken, so only a listing
    # sees it; a dup2 is counted apart from other openings for that reason.
    pytester.makepyfile(
        test_it="""
        import os

        def test_moves_it_high():
            with open(os.devnull) as f:
                os.dup2(f.fileno(), 250)
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*leaked 1 resource", "  fd 250 *"])


def test_the_last_of_many_descriptors_is_found_when_the_others_are_closed(
    pytester: pytest.Pytester,
) -> None:
    # Forty openings: the last one lands above every free number the probe watches, and
    # closing the others leaves the numbers it watches as they were. Only a listing sees it.
    pytester.makepyfile(
        test_it="""
        import os

        def test_keeps_the_last():
            global KEPT
            files = [open(os.devnull) for _ in range(40)]
            KEPT = files.pop()
            for f in files:
                f.close()
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*leaked 1 resource", "  fd * device /dev/null*"])


def test_recording_adds_no_audit_hook_and_restores_what_it_wraps(
    pytester: pytest.Pytester,
) -> None:
    # An audit hook, once added, runs on every audit event of the process for the rest of its
    # life (each frame's f_code read by a stack walker among them): origins come from
    # wrappers that are removed when the run ends. Still found, at the test's line: a file
    # opened through pathlib (io.open), one through os.open, and a socket.
    pytester.makeconftest(
        """
        import atexit, builtins, io, os, socket, sys

        ADDED = []
        _add = sys.addaudithook

        def counting(hook):
            ADDED.append(hook)
            _add(hook)

        sys.addaudithook = counting
        ORIGINAL = (builtins.open, io.open, os.open, socket.socket.__init__)

        def restored():
            now = (builtins.open, io.open, os.open, socket.socket.__init__)
            print(f"audit hooks added: {len(ADDED)}; restored: {now == ORIGINAL}")

        atexit.register(restored)
        """
    )
    pytester.makepyfile(
        test_it="""
        import io, os, pickle, socket
        KEEP = []

        def test_opens(tmp_path):
            KEEP.append((tmp_path / "kept.txt").open("w"))
            KEEP.append(os.open(tmp_path / "bare.txt", os.O_CREAT | os.O_WRONLY))
            KEEP.append(socket.socket())
            # Wrapped, each still pickles by reference to itself.
            for call in (open, io.open, os.open):
                assert pickle.loads(pickle.dumps(call)) is call
        """
    )
    result = pytester.runpytest_subprocess(
        *QUIET, "--leakguard", "-o", "leakguard_grace=0", "-o", "leakguard_cleanup=false"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines_random(
        [
            "*kept.txt (mode w)*opened at test_it.py:5 in test_opens",
            "*bare.txt*opened at test_it.py:6 in test_opens",
            "*socket tcp unbound*opened at test_it.py:7 in test_opens",
            "audit hooks added: 0; restored: True",
        ]
    )


def test_a_file_opened_around_the_recorders_wrappers_is_reported_and_left_open(
    pytester: pytest.Pytester,
) -> None:
    # ``_io.open`` is the original ``open``, as a reference kept from before the run would be:
    # no record says who made the file, so a longer-lived fixture's thread may have: reported,
    # not closed. Control: the same file opened with ``open`` is closed through its owner.
    pytester.makepyfile(
        test_it="""
        import _io
        KEEP = []

        def test_around(tmp_path):
            KEEP.append(_io.open(tmp_path / "around.log", "w"))

        def test_through(tmp_path):
            KEEP.append(open(tmp_path / "through.log", "w"))
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines_random(
        [
            "cleanup: fd * left open: no record of the call that opened it *",
            "cleanup: fd * closed (through its TextIOWrapper)",
        ]
    )
    result.stdout.no_fnmatch_line("*around.log*opened at*")
    result.stdout.fnmatch_lines(["*through.log (mode w)*opened at test_it.py:8 in test_through"])


def test_a_descriptor_made_in_c_does_not_take_the_record_of_another_of_its_kind(
    pytester: pytest.Pytester,
) -> None:
    # Every epoll, eventfd and inotify descriptor shares one anonymous inode: an mmap's copy of
    # a number is matched to its file's record by (st_dev, st_ino), and that match must never
    # hand a selector's record (line 5) to an epoll no recorded call made (line 6). Real suite:
    # watchfiles' native epoll, eventfd and inotify were named as an anyio loop's, made during
    # an earlier test. Control: a memfd mapped by mmap, whose copy takes the memfd's record.
    pytester.makepyfile(
        test_it="""
        import mmap, os, select, selectors
        KEEP = []

        def test_bare_epoll():
            sel = selectors.DefaultSelector()
            KEEP.append(select.epoll())
            sel.close()

        def test_mapped_memfd():
            fd = os.memfd_create("kept")
            os.ftruncate(fd, 4096)
            KEEP.append(mmap.mmap(fd, 4096))
        """
    )
    result = run(pytester, "-o", "leakguard_cleanup=false")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.no_fnmatch_line("*epoll*opened at*")
    result.stdout.fnmatch_lines(["*test_bare_epoll leaked 1 resource", "  fd * epoll"])
    # The memfd and the mmap's copy of its number: both at the memfd's line.
    memfd = "memfd kept   opened at test_it.py:10 in test_mapped_memfd"
    assert str(result.stdout).count(memfd) == 2

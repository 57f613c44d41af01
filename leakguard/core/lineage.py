"""Whose code is running: the checked test's own thread, the threads it started, or someone older.

Ownership starts here. A resource is the test's only if the code that created it ran for the
test: on the test's thread, or on a thread the test (transitively) started. Everything else (a
class-scoped server's accept loop, a session fixture's background thread, a thread an earlier
test leaked) belongs to that older owner, however new the resource is.

Each checked test (and each ``leakguard.check`` block) opens an *epoch*, a number that only ever
grows. A thread is stamped at ``start()`` with the epoch of the code that started it, so lineage
follows threads that start threads with no walk at all. Recorders (the descriptor wrappers,
spawn records, pool constructors) ask `Lineage.creator` for the calling code's epoch (≈ 0.3 µs)
and keep it next to their record; a check compares it with the test's epoch.

The one instance, `LINEAGE`, is process-wide by nature: the patch on ``Thread.start`` is.
"""

from __future__ import annotations

import functools
import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from leakguard.core import compat, patching
from leakguard.core.origin import THREAD_ORIGIN_ATTR, capture

EPOCH_ATTR = "_leakguard_epoch"
"""Set on every ``Thread`` started while leakguard is installed: the starter's epoch (0: none)."""
ORIGIN_ATTR = THREAD_ORIGIN_ATTR

NO_EPOCH = 0


class Lineage:
    """The stack of open epochs, and the stamping of threads with their starter's epoch."""

    def __init__(self) -> None:
        # Epochs only grow, also across copies of this module: pytester's in-process runs
        # unload leakguard after each run, and the next run's copy starts afresh while threads
        # an earlier run left keep their stamps. Starting from the clock (ns), a new copy's
        # epochs lie above every epoch an older copy handed out (one epoch takes far more than
        # a nanosecond), so an older stamp never reads as the current test's.
        self.latest = time.monotonic_ns()
        """The last epoch opened so far (open or closed): with `begin`'s value, the range a
        test's epochs span (see `leakguard.core.crosstest`)."""
        self.starts = 0
        """Changes at every thread start (while installed): unchanged, with an unchanged number
        of live threads, means an unchanged set, whether 10 threads are alive or 10,000.
        Each start stores a fresh value of an atomic counter (no lost update between threads
        racing on ``+= 1``), so a value is never seen twice for two different sets."""
        self._serial = itertools.count(1)
        # (epoch, ident of the thread that opened it): a tuple, not an object, since one is made
        # around every test.
        self._stack: list[tuple[int, int]] = []
        self._users = 0
        # Raw ``_thread`` threads have no Thread object to stamp: ident -> epoch while they run.
        self.raw: dict[int, int] = {}
        # Epochs opened for a longer-lived fixture's setup: their work is the fixture's, never
        # the test's, although they open while the test's epoch is open. One int per fixture.
        self._foreign: set[int] = set()

    # --- epochs ------------------------------------------------------------------------------
    def begin(self) -> int:
        """Open an epoch for code running on the calling thread from now on."""
        epoch = self.latest = self.latest + 1
        self._stack.append((epoch, threading.get_ident()))
        return epoch

    def end(self, epoch: int) -> None:
        """Close ``epoch`` (and anything opened inside it that was never closed)."""
        while self._stack and self._stack[-1][0] >= epoch:
            self._stack.pop()

    def for_fixture(self, epoch: int) -> bool:
        """Whether ``epoch`` was opened for a longer-lived fixture's setup."""
        return epoch in self._foreign

    @property
    def current(self) -> int:
        """The innermost open epoch, or `NO_EPOCH`."""
        return self._stack[-1][0] if self._stack else NO_EPOCH

    @contextmanager
    def fixture_setup(self) -> Iterator[int]:
        """While a longer-lived fixture is set up, the test's thread works for that fixture:
        what it (and the threads it starts) makes belongs to the fixture's own epoch."""
        epoch = self.begin()
        self._foreign.add(epoch)
        try:
            yield epoch
        finally:
            self.end(epoch)

    def creator(self) -> int:
        """The epoch of the code calling this: its test's, or `NO_EPOCH` for anyone else.

        A thread started by an earlier test keeps that test's epoch: what it creates now is
        never the current test's.
        """
        ident = threading.get_ident()
        stack = self._stack
        for epoch, opener in reversed(stack):
            if opener == ident:
                return epoch
        thread = compat.thread_by_ident(ident)
        if thread is not None:
            return getattr(thread, EPOCH_ATTR, NO_EPOCH)
        return self.raw.get(ident, NO_EPOCH)

    def belongs(self, created: int, epoch: int) -> bool:
        """Whether something made under ``created`` is the work of the owner that opened ``epoch``.

        Epochs only grow and tests run one after the other, so everything opened from ``epoch``
        on, while that test is still being checked, is that test's (or a block nested in it),
        except what a longer-lived fixture set up meanwhile.
        """
        if created == epoch:
            return created != NO_EPOCH
        return created > epoch and created not in self._foreign

    def note_start(self) -> None:
        self.starts = next(self._serial)

    # --- stamping threads --------------------------------------------------------------------
    def install(self) -> None:
        self._users += 1
        patching.install(threading.Thread, "start", _stamping_start)

    def uninstall(self) -> None:
        if self._users > 0:
            self._users -= 1
            patching.uninstall(threading.Thread, "start")


def stamped(thread: object) -> bool:
    """Whether ``thread`` was started while leakguard watched (by a test, a fixture or a
    library during the run), as opposed to before it started."""
    return hasattr(thread, EPOCH_ATTR)


def thread_epoch(thread: object) -> int:
    """The epoch a thread was started under (`NO_EPOCH`: before leakguard, or by no test)."""
    epoch = getattr(thread, EPOCH_ATTR, NO_EPOCH)
    return epoch if isinstance(epoch, int) else NO_EPOCH


def _stamping_start(
    original: Callable[[threading.Thread], None],
) -> Callable[[threading.Thread], None]:
    def start(self: threading.Thread) -> None:
        # Where and by whom the thread was started: a raw frame walk (≈ 1–2 µs) and one dict
        # lookup. Nothing here touches the file system: this runs inside event loops too.
        # The caller's frame, handed over: the walk makes no frame object for this one.
        try:
            caller: FrameType | None = sys._getframe(1)
        except ValueError:  # started from C with no Python frame above: walk from here
            caller = None
        setattr(self, ORIGIN_ATTR, capture(caller))
        setattr(self, EPOCH_ATTR, LINEAGE.creator())
        try:
            original(self)
        finally:
            # Counted once the thread is visible (enumerate, _count): counted before, a
            # snapshot in between could pair the new count with a set that lacks it.
            LINEAGE.note_start()

    functools.update_wrapper(start, original, assigned=(), updated=())
    return start


LINEAGE = Lineage()

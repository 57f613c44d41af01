"""One scan of this process's descriptors, shared by the ``sockets``, ``ports`` and ``fds``
trackers within one phase (through `leakguard.core.tracker.Phase.shared`).

A descriptor's identity is ``(fd, st_dev, st_ino)``: a number closed and reopened during a test
names a different file, so it is a different resource. The scan is ``listdir('/proc/self/fd')``
plus one ``fstat`` per descriptor; nothing is read, resolved or described here.
"""

from __future__ import annotations

import errno
import os
import resource
import select
import stat
import sys
from collections.abc import Callable, Iterable

FdKey = tuple[int, int, int]
"""``(fd, st_dev, st_ino)``."""

_PROC_FD = "/proc/self/fd" if sys.platform.startswith("linux") else "/dev/fd"
_PROBE_MARGIN = 1024
_PROBE_CAP = 1 << 16
"""The EMFILE fallback probes at most this many numbers (a huge soft limit would take seconds)."""


_PROBE_FREE = 32
"""Free numbers probed besides the open ones: a new descriptor takes the lowest free number."""
_QUICK_FREE = 8
"""Free numbers the quick probe watches, for a check with no counted opening since the scan
(the clean path, twice a test): each registered number costs ≈ 33 ns of ``poll`` and one tuple
in its answer (all six trackers: ≈ 2 µs a test less than the full probe on a Firecracker VM)."""
_FEW_OPENINGS = 8
"""Counted openings since a scan after which the next one may still trust its probe for the
numbers: each makes at most two descriptors (a pipe, a socketpair), so together they reach at
most 16 of the probe's free numbers, and uncounted ones (made in C) have the other 16."""


class NumberProbe:
    """Tells in one ``poll(2)`` call (≈ 10 µs for 2,000 numbers) whether the set of open
    descriptor numbers is still the one it was made for, without listing ``/proc/self/fd``.

    The open numbers and the lowest free ones are registered with no events: ``poll`` then
    reports the closed ones (``POLLNVAL``). The kernel hands out the lowest free number, so a
    new descriptor lands on a registered free number; ``dup2`` onto any other number is
    counted as an opening instead. A poll object holds no descriptor.

    Two poll objects: the full one watches `_PROBE_FREE` free numbers (room for the counted
    openings since the scan and for uncounted ones besides), the quick one `_QUICK_FREE`, for
    a check with nothing counted since. What the quick one cannot see: more than
    `_QUICK_FREE` descriptors opened in C at once since the scan, all of them but one above
    its free numbers closed again.
    """

    def __init__(self, numbers: Iterable[int]) -> None:
        open_numbers = sorted(set(numbers))
        taken = set(open_numbers)
        free: list[int] = []
        candidate = 0
        while len(free) < _PROBE_FREE:
            if candidate not in taken:
                free.append(candidate)
            candidate += 1
        self._look, self._expected = _registered(open_numbers, free)
        self._quick_look, self._quick_expected = _registered(open_numbers, free[:_QUICK_FREE])

    def unchanged(self, quick: bool = False) -> bool:
        # List equality runs in C; the list is short (the free numbers, plus open descriptors
        # with a standing condition), whatever gaps lie below a high inherited fd.
        try:
            if quick:
                return self._quick_look(0) == self._quick_expected
            return self._look(0) == self._expected
        except OSError:
            # EINVAL: more numbers registered than RLIMIT_NOFILE allows (the limit was lowered,
            # or the process is near it). Not proven unchanged: the caller scans in full.
            return False


_Look = Callable[[int], list[tuple[int, int]]]


def _registered(open_numbers: list[int], free: list[int]) -> tuple[_Look, list[tuple[int, int]]]:
    """The ``poll`` of a poll object watching these numbers, and what it reports now: the
    closed numbers (POLLNVAL), in registration order, and any open one with a standing
    condition (a pipe whose writer is gone: POLLHUP)."""
    watcher = select.poll()
    for fd in (*open_numbers, *free):
        watcher.register(fd, 0)
    return watcher.poll, watcher.poll(0)


class FdScan:
    """Identities of every open descriptor at one moment: ``{(fd, st_dev, st_ino): st_mode}``.

    One dict for all kinds: each tracker sorts out its own kind (``S_ISSOCK`` or not) among
    the *new* keys only, so the clean path pays for no partitioning.

    A plain class: a dataclass costs 0.25-0.5 ms to define (Python 3.10-3.12), at start-up.
    """

    __slots__ = ("fds", "names", "note", "opens", "placed", "probe")

    def __init__(
        self,
        fds: dict[FdKey, int],
        note: str = "",
        names: list[str] | None = None,
        opens: int = -1,
        probe: NumberProbe | None = None,
        placed: int = -1,
    ) -> None:
        self.fds = fds
        self.note = note
        """Why the scan was degraded (e.g. taken under EMFILE), or ``""``."""
        self.names = names
        """The ``/proc/self/fd`` listing the identities were checked against (None: probed)."""
        self.opens = opens
        """The descriptor-opening count (``OriginRecorder.opens``) when identities were taken."""
        self.probe = probe
        """Checks, without a listing, that the open numbers are still those of ``fds``."""
        self.placed = placed
        """The count of descriptors put on a chosen number (``dup2``) when the scan was taken."""


def is_socket(st_mode: int) -> bool:
    return stat.S_ISSOCK(st_mode)


def _identify(fds: Iterable[int]) -> dict[FdKey, int]:
    fstat = os.fstat
    found: dict[FdKey, int] = {}
    for fd in fds:
        try:
            st = fstat(fd)
        except OSError:
            continue  # closed between the listing and now (the listing's own fd, a race): skip
        # Indexing a stat_result is cheaper than its attributes: 0 mode, 1 ino, 2 dev.
        found[fd, st[2], st[1]] = st[0]
    return found


def scan_fds(previous: FdScan | None = None, opens: int = -1, placed: int = -1) -> FdScan:
    """Take one scan: ≈ 0.3 µs per descriptor to list, ≈ 0.9 µs to ``fstat``.

    The ``fstat`` pass is skipped when ``previous`` listed the same numbers and no descriptor
    was opened since (``opens`` unchanged): closing alone cannot reuse a number, and every
    Python-level way to open one is counted, so ``previous``'s identities still hold. What
    this cannot see is a number closed and reopened by C code with no audit event.

    The listing is skipped when few descriptors were opened since (`_FEW_OPENINGS`), none on
    a chosen number (``placed``, a ``dup2``), and the probe finds the same open numbers: every
    new one took the lowest free number, which the probe watches. The same numbers are then
    ``fstat``-ed again (one may have been closed and reopened as another file). What this
    cannot see besides: more than 16 descriptors opened in C since (more than 8 when no opening
    was counted since, the quick probe's case), all but one above the probe's free numbers
    closed again.
    """
    if previous is not None and previous.probe is not None and opens >= 0:
        since = opens - previous.opens
        same_numbers = since == 0 or (
            0 < since <= _FEW_OPENINGS and placed >= 0 and placed == previous.placed
        )
        if same_numbers and previous.probe.unchanged(quick=since == 0):
            if since == 0:
                # The clean path: same numbers, nothing opened since, so the same identities
                # (and the same object: a tracker handing back the very mapping it gave lets
                # the engine skip even the key comparison).
                return previous
            fds = _identify([key[0] for key in previous.fds])
            if fds == previous.fds:
                fds = previous.fds
            return FdScan(fds, "", previous.names, opens, previous.probe, placed)
    unchanged = previous is not None and opens >= 0 and previous.opens == opens
    try:
        names = os.listdir(_PROC_FD)
    except OSError as exc:
        if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOENT):
            raise
        # Listing needs a descriptor of its own; with none left, probe every number that can
        # be open instead (fstat needs none): slower, and said so in the report.
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        limit = soft if soft != resource.RLIM_INFINITY else _PROBE_CAP
        # Descriptors opened before the limit was lowered sit above it, possibly above the
        # highest one seen so far: probe a margin past both.
        highest = max((k[0] for k in previous.fds), default=-1) if previous else -1
        top = min(max(limit, highest + 1) + _PROBE_MARGIN, _PROBE_CAP)
        reason = errno.errorcode.get(exc.errno or 0, str(exc))
        note = f"snapshot taken without listing {_PROC_FD} ({reason}): probed {top} numbers"
        return FdScan(_identify(range(top)), note)
    if unchanged and previous is not None and previous.names == names:
        return FdScan(previous.fds, "", names, opens, previous.probe, placed)
    fds = _identify(map(int, names))
    # The listing's own descriptor is closed again: the probe expects what fstat found open.
    try:
        probe = NumberProbe(key[0] for key in fds) if opens >= 0 else None
    except OSError:
        probe = None  # see NumberProbe.unchanged: the next scan is a full one
    return FdScan(fds, "", names, opens, probe, placed)

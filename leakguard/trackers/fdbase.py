"""What the descriptor trackers (``sockets``, ``ports``, ``fds``) share: joining the phase's
shared scan, and starting the origin recorder while they are installed."""

from __future__ import annotations

from leakguard.tracker import Key, Tracker
from leakguard.trackers.fdorigins import RECORDER
from leakguard.trackers.fdscan import GROUPS, ScanGroup


class ScanningTracker(Tracker):
    """A tracker whose snapshot is this process's descriptors, from one scan per phase."""

    ends_by_itself = False

    def __init__(self) -> None:
        self._group: ScanGroup | None = None
        self._note = ""

    def install(self) -> None:
        self._group = GROUPS.join(self.name)
        RECORDER.start()

    def uninstall(self) -> None:
        if self._group is not None:
            self._group.leave(self.name)
            self._group = None
            RECORDER.stop()

    def own_descriptors(self) -> dict[Key, int]:
        """``{(fd, st_dev, st_ino): st_mode}`` of every descriptor, from the phase's scan.

        Every kind is included: each tracker sorts out its own among *new* keys only, so the
        clean path pays for no partitioning.
        """
        if self._group is None:
            self.install()
        assert self._group is not None
        scan = self._group.scan(self.name, RECORDER.opens)
        self._note = scan.note
        return scan.fds

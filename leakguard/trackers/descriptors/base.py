"""What the descriptor trackers (``sockets``, ``ports``, ``fds``) share: joining the phase's
shared scan, deciding which new descriptors are the test's (lineage), whether one is native,
its Python owner, and safe cleanup.

Describing, the owner search, what it found and cleanup (`describe`, `owners`, `found`,
`cleanup` beside this module) are imported on the leak path only (`leakguard.core.leakpath`)."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, TypeGuard

from leakguard.core.lineage import LINEAGE, NO_EPOCH
from leakguard.core.tracker import Phase, Resource, Tracker
from leakguard.trackers.descriptors.children import ChildKey, ChildPort
from leakguard.trackers.descriptors.recording import RECORDER, Made
from leakguard.trackers.descriptors.scan import FdKey, FdScan, scan_fds

if TYPE_CHECKING:
    from leakguard.trackers.descriptors.owners import Chain

_MAX_REPLACED = 1024

DescriptorKey = FdKey | ChildKey
"""``(fd, st_dev, st_ino)`` for this process's descriptors; ``("pid", pid, inode)`` for a
socket a child process holds (``ports`` only)."""
DescriptorHandle = int | ChildPort
"""The ``st_mode`` of one of this process's descriptors; a child's pid in a snapshot, or what
its port is once found new."""

_SCAN = "descriptors"
"""The name of the phase's shared scan (see `Phase.shared`)."""


def own_key(key: object) -> TypeGuard[FdKey]:
    """A descriptor of this process (``(fd, dev, ino)``), not a child's socket (``ports``)."""
    return type(key) is tuple and len(key) == 3 and type(key[0]) is int


class ScanningTracker(Tracker[DescriptorKey, DescriptorHandle]):
    """A tracker whose snapshot is this process's descriptors, from one scan per phase."""

    ends_by_itself = False

    def __init__(self) -> None:
        self._installed = False
        self._note = ""
        self._scan: FdScan | None = None
        # Lineage per new key, for the epoch it was looked up in (a key can come back later,
        # made by someone else: the same file reopened on the same number).
        self._creators: dict[FdKey, bool] = {}
        self._creators_epoch = NO_EPOCH
        self._before: Mapping[DescriptorKey, DescriptorHandle] | None = None
        self._before_numbers: set[int] = set()
        self.replaced: dict[FdKey, FdKey] = {}
        """New descriptors put on a number that was open before, under another identity (a
        ``dup2`` onto it): whatever Python object holds that number is older than the test."""
        self._unowned: tuple[FdScan, Mapping[DescriptorKey, DescriptorHandle], set[int]] | None
        self._unowned = None
        self._loop_fds: tuple[FdScan | None, set[int]] | None = None

    def install(self) -> None:
        if not self._installed:
            self._installed = True
            RECORDER.start()

    def uninstall(self) -> None:
        if self._installed:
            self._installed = False
            RECORDER.stop()

    def own_descriptors(self, phase: Phase) -> Mapping[DescriptorKey, DescriptorHandle]:
        """``{(fd, st_dev, st_ino): st_mode}`` of every descriptor, from the phase's scan.

        The first descriptor tracker asked in a phase takes the scan, the others reuse it; a
        new phase (the test ran, cleanup closed something) takes a new one. Every kind is
        included: each tracker sorts out its own among *new* keys only, so the clean path pays
        for no partitioning.
        """
        if not self._installed:
            self.install()
        # `Phase.shared` by hand: this runs three times in each phase of every test, and the
        # call and the closure it needs cost more than the lookup.
        shared = phase._shared
        scan: FdScan | None = shared.get(_SCAN)
        if scan is None:  # the first descriptor tracker asked in this phase takes the scan
            if phase.name == "before" or phase.name == "live":
                _forget_found_owners()  # a new check: what earlier searches found may have changed
            scan = shared[_SCAN] = scan_fds(self._scan, RECORDER.opens, RECORDER.placed)
        self._scan = scan
        self._note = scan.note
        # A dict's key type is invariant: ``dict[FdKey, int]`` is not a mapping of the wider
        # key type to mypy, though nothing ever writes through this one.
        return scan.fds  # type: ignore[return-value]

    # --- which new descriptors are the test's --------------------------------------------------
    def wants(self, key: FdKey, st_mode: int) -> bool:
        """Whether a new descriptor of this process is this tracker's kind."""
        raise NotImplementedError

    def new_since(
        self,
        before: Mapping[DescriptorKey, DescriptorHandle],
        after: Mapping[DescriptorKey, DescriptorHandle],
    ) -> dict[DescriptorKey, DescriptorHandle]:
        new = super().new_since(before, after)
        for key in list(new):
            st_mode = new[key]
            if not own_key(key) or not isinstance(st_mode, int):
                continue  # a child's socket (ports): decided by that tracker
            try:
                if not self.wants(key, st_mode) or self._foreign(key, st_mode):
                    del new[key]
                    continue
                self._note_replaced(key, before)
            except Exception:  # one odd descriptor must not blind the tracker: report it
                continue
        return new

    def creator_epoch(self, key: DescriptorKey, handle: DescriptorHandle) -> int | None:
        if not own_key(key) or not isinstance(handle, int) or not self.wants(key, handle):
            return None
        made = self.made(key, handle, resolve=False)
        return made.epoch if made is not None else None

    def _foreign(self, key: FdKey, st_mode: int) -> bool:
        """Whether a record says this descriptor was made by code that is not the test's: a
        class-scoped server's thread accepting, a session fixture's thread, an earlier test's."""
        epoch = LINEAGE.current
        if epoch == NO_EPOCH:
            return False
        if epoch != self._creators_epoch:
            self._creators.clear()
            self._creators_epoch = epoch
        foreign = self._creators.get(key)
        if foreign is None:
            made = self.made(key, st_mode, resolve=False)
            foreign = made is not None and not LINEAGE.belongs(made.epoch, epoch)
            self._creators[key] = foreign
        return foreign

    def _note_replaced(self, key: FdKey, before: Mapping[DescriptorKey, DescriptorHandle]) -> None:
        if before is not self._before:
            self._before = before
            self._before_numbers = {k[0] for k in before if own_key(k)}
        if key[0] in self._before_numbers:
            old = next((k for k in before if own_key(k) and k[0] == key[0]), None)
            if old is None:
                return
            self.replaced[key] = old
            while len(self.replaced) > _MAX_REPLACED:
                del self.replaced[next(iter(self.replaced))]

    # --- what is known about one descriptor ----------------------------------------------------
    def made(self, key: FdKey, st_mode: int, *, resolve: bool = True) -> Made | None:
        """The record of the Python call that made this descriptor, if any was seen."""
        made = RECORDER.for_key(key)
        if made is not None:
            return made
        if stat.S_ISSOCK(st_mode):
            found = RECORDER.socket_for(key[0])
            return found[1] if found is not None else None
        from leakguard.trackers.descriptors.describe import target

        path = target(key[0])
        if path.startswith("/"):
            made = RECORDER.for_path(path.removesuffix(" (deleted)"), resolve=resolve)
        return made if made is not None else RECORDER.for_mapping(key, st_mode)

    def chains(self, fd: int) -> list[Chain]:
        """Python objects holding ``fd``: one heap walk serves every new descriptor of the check,
        whichever descriptor tracker asks, and rescans (after a collection) do not repeat it.

        The cache holds its objects weakly: keeping a leaked file alive here would keep its
        descriptor open (and a garbage-only leak would never look like one).
        """
        from leakguard.trackers.descriptors.found import FOUND_OWNERS, polling_of
        from leakguard.trackers.descriptors.owners import find_chains

        scan = self._scan
        keys = FOUND_OWNERS.keys_of(scan)
        key = keys.get(fd)
        if key is not None:
            cached = FOUND_OWNERS.revive(key)
            if cached is not None:
                return cached
        unowned = self._unowned_numbers()
        if fd in unowned:
            return []
        wanted = {fd}
        modes: dict[int, int] = {}
        if scan is not None:
            before = self._before
            for k, mode in scan.fds.items():
                if k[0] == fd:
                    modes[fd] = mode
                elif (
                    before is not None
                    and k not in before
                    and k[0] not in unowned
                    and k not in FOUND_OWNERS.weak
                ):
                    wanted.add(k[0])
                    modes[k[0]] = mode
        selectors = RECORDER.selectors_holding(wanted)
        found = find_chains(wanted, modes, polling_of(selectors))
        numbered = {number: keys[number] for number in wanted if number in keys}
        FOUND_OWNERS.add(found, numbered, selectors)
        return found.get(fd, [])

    def open_loop_fds(self) -> set[int]:
        """`owners.open_loop_fds`, once per scan: without the tasks tracker's records it is a
        heap walk (≈ 30 ms on a big suite's heap), and every new unix socket asks."""
        from leakguard.trackers.descriptors.owners import open_loop_fds

        cached = self._loop_fds
        if cached is not None and cached[0] is self._scan:
            return cached[1]
        found = open_loop_fds()
        self._loop_fds = (self._scan, found)
        return found

    def _modes(self, fds: set[int]) -> dict[int, int]:
        """What the last scan knows of the kind of each of ``fds``."""
        scan = self._scan
        if scan is None:
            return {}
        return {key[0]: mode for key, mode in scan.fds.items() if key[0] in fds}

    def _unowned_numbers(self) -> set[int]:
        """New sockets of this scan that the recorder proves no Python object holds (see
        `OriginRecorder.unowned`): no heap walk for them. A ``dup2`` onto a number open before
        the test is left to the walk: its holder may predate the records. Worked out once per
        scan: describing, the owner search and cleanup each ask for every new descriptor."""
        scan, before = self._scan, self._before
        if scan is None or before is None:
            return set()
        known = self._unowned
        if known is not None and known[0] is scan and known[1] is before:
            return known[2]
        numbers = {
            key[0]
            for key, mode in scan.fds.items()
            if key not in before
            and stat.S_ISSOCK(mode)
            and key not in self.replaced
            and RECORDER.unowned(key)
        }
        self._unowned = (scan, before, numbers)
        return numbers

    def classify(
        self, resource: Resource[DescriptorKey], made: Made | None
    ) -> Resource[DescriptorKey]:
        """``resource``, made ``native`` when no Python call opened it and no Python object
        holds it; ``ownerless`` when a Python call made it but the records prove that no
        object holds it now (a detached socket)."""
        from leakguard.trackers.descriptors.cleanup import fault
        from leakguard.trackers.descriptors.owners import library_holders

        key = resource.key
        if not own_key(key):
            return resource
        if made is not None:
            if key[0] in self._unowned_numbers():
                return replace(resource, ownerless=True)
            return resource
        try:
            if self.chains(key[0]) or library_holders([key]):
                return resource
        except Exception as exc:  # the search is best effort: say so on this resource
            return replace(resource, notes=(*resource.notes, f"owner search failed ({fault(exc)})"))
        why = "no Python object holds it and no Python call opened it (made in C)"
        return replace(resource, category="native", notes=(*resource.notes, why))

    def owner_object(self, resource: Resource[DescriptorKey]) -> object | None:
        from leakguard.trackers.descriptors.owners import library_holders

        key = resource.key
        if not own_key(key) or resource.category == "native":
            return None
        holder = library_holders([key]).get(key[0])
        if holder is not None:
            owner: object = holder.obj
            return owner
        chains = self.chains(key[0])
        return chains[0].outermost if len(chains) == 1 else None

    # --- cleanup -------------------------------------------------------------------------------
    def outcome_name(self, key: FdKey) -> str:
        return f"fd {key[0]}"

    def close(self, resources: Sequence[Resource[DescriptorKey]]) -> list[str]:
        from leakguard.trackers.descriptors.cleanup import close_descriptors
        from leakguard.trackers.descriptors.found import FOUND_OWNERS, polling_of
        from leakguard.trackers.descriptors.owners import find_chains

        def made_of(key: FdKey) -> Made | None:
            return self.made(key, _mode_of(key))

        def search(fds: set[int]) -> dict[int, list[Chain]]:
            # The owner search of this check found these moments ago (one heap walk saved,
            # ≈ 7 ms per flagged test); anything it did not cover is searched afresh.
            # Sockets the records prove unowned need no walk (see `_unowned_numbers`).
            fds = fds - self._unowned_numbers()
            if not fds:
                return {}
            keys = FOUND_OWNERS.keys_of(self._scan)
            found: dict[int, list[Chain]] = {}
            for number in fds:
                key = keys.get(number)
                revived = FOUND_OWNERS.revive(key) if key is not None else None
                if revived is None:
                    polling = polling_of(RECORDER.selectors_holding(fds))
                    return find_chains(fds, self._modes(fds), polling)
                if revived:
                    found[number] = revived
            return found

        outcomes, _ = close_descriptors(
            resources, self.outcome_name, made_of, self.replaced, search
        )
        return outcomes


def _mode_of(key: FdKey) -> int:
    try:
        return os.fstat(key[0]).st_mode
    except OSError:
        return 0


def _forget_found_owners() -> None:
    """Clear the owner searches' findings (`found.FOUND_OWNERS`), if a leak path made any: the
    clean path never imports that module."""
    found = sys.modules.get("leakguard.trackers.descriptors.found")
    if found is not None:
        found.FOUND_OWNERS.clear()

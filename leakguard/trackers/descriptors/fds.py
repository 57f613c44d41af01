"""The ``fds`` tracker: every open descriptor that is not a socket (files, pipes, eventfds, epoll,
memfd, ``os.open``), identified by ``(fd, st_dev, st_ino)`` so a reused number is a new resource."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from leakguard.core.origin import Origin
from leakguard.core.tracker import Phase, Resource
from leakguard.trackers.descriptors.base import (
    DescriptorHandle,
    DescriptorKey,
    ScanningTracker,
    own_key,
)
from leakguard.trackers.descriptors.scan import FdKey, is_socket

_STDIO = 3


class FdTracker(ScanningTracker):
    name = "fds"

    def snapshot(self, phase: Phase) -> Mapping[DescriptorKey, DescriptorHandle]:
        return self.own_descriptors(phase)

    def wants(self, key: FdKey, st_mode: int) -> bool:
        # Sockets are the sockets and ports trackers'. 0–2 are rebound by output capture
        # (pytest's, a test's own): what they point at is the process's business.
        return not is_socket(st_mode) and key[0] >= _STDIO

    def describe(self, key: DescriptorKey, handle: DescriptorHandle) -> Resource[DescriptorKey]:
        if not own_key(key) or not isinstance(handle, int):
            raise TypeError(f"not a descriptor of this process: {key!r}")
        from leakguard.trackers.descriptors.describe import describe_fd

        fd = key[0]
        made = self.made(key, handle)
        mode = made.mode.replace("b", "").replace("t", "") if made and made.mode else None
        resource = Resource[DescriptorKey](
            self.name,
            key,
            "fd",
            f"{fd} {describe_fd(fd, handle, mode)}",
            origin=Origin.from_raw(made.origin) if made and made.origin else None,
            verb="opened",
            handle=key,
            notes=(self._note,) if self._note else (),
        )
        return self.classify(resource, made)

    def builtin_ignore(self, resource: Resource[DescriptorKey]) -> str | None:
        from leakguard.trackers.descriptors.owners import multiprocessing_helpers

        key = resource.key
        if not own_key(key):
            return None
        if key[0] in multiprocessing_helpers()[0]:
            return "multiprocessing's resource tracker or forkserver (started once per run)"
        if resource.label.endswith(" epoll") and key[0] in self.open_loop_fds():
            return "the selector of an asyncio loop left open (reported by the tasks tracker)"
        return None

    def cleanup(self, resources: Sequence[Resource[DescriptorKey]], timeout: float) -> list[str]:
        return self.close(resources)

    def identify(self, obj: object) -> DescriptorKey | None:
        from leakguard.trackers.descriptors.describe import key_of

        return key_of(obj, sockets=False)

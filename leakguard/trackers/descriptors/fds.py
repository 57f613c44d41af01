"""The ``fds`` tracker: every open descriptor that is not a socket (files, pipes, eventfds, epoll,
memfd, ``os.open``), identified by ``(fd, st_dev, st_ino)`` so a reused number is a new resource."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leakguard.core.origin import Origin
from leakguard.core.tracker import Key, Resource
from leakguard.trackers.descriptors.base import ScanningTracker
from leakguard.trackers.descriptors.describe import describe_fd, key_of
from leakguard.trackers.descriptors.owners import multiprocessing_helpers, open_loop_fds
from leakguard.trackers.descriptors.scan import FdKey, is_socket

_STDIO = 3


class FdTracker(ScanningTracker):
    name = "fds"

    def snapshot(self) -> dict[Key, int]:
        return self.own_descriptors()  # sockets included: sorted out in new_since

    def wants(self, key: FdKey, st_mode: int) -> bool:
        # Sockets are the sockets and ports trackers'. 0–2 are rebound by output capture
        # (pytest's, a test's own): what they point at is the process's business.
        return not is_socket(st_mode) and key[0] >= _STDIO

    def describe(self, key: Key, handle: Any) -> Resource:
        fd_key: FdKey = key  # type: ignore[assignment]  # snapshot keys are FdKey tuples
        fd = fd_key[0]
        st_mode = int(handle)
        made = self.made(fd_key, st_mode)
        mode = made.mode.replace("b", "").replace("t", "") if made and made.mode else None
        resource = Resource(
            self.name,
            key,
            "fd",
            f"{fd} {describe_fd(fd, st_mode, mode)}",
            origin=Origin.from_raw(made.origin) if made and made.origin else None,
            verb="opened",
            handle=fd_key,
        )
        if self._note:
            resource.notes.append(self._note)
        self.classify(resource, made)
        return resource

    def builtin_ignore(self, resource: Resource) -> str | None:
        if resource.key[0] in multiprocessing_helpers()[0]:  # type: ignore[index]  # FdKey
            return "multiprocessing's resource tracker or forkserver (started once per run)"
        if resource.label.endswith(" epoll") and resource.key[0] in open_loop_fds():  # type: ignore[index]  # FdKey
            return "the selector of an asyncio loop left open (reported by the tasks tracker)"
        return None

    def cleanup(self, resources: Sequence[Resource], timeout: float) -> list[str]:
        return self.close(resources)

    def identify(self, obj: object) -> Key | None:
        return key_of(obj, sockets=False)

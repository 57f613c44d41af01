"""The ``sockets`` tracker: open socket descriptors that are not listening (TCP and UDP over v4
and v6, unix sockets), described by local and remote address and state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from leakguard.origin import Origin
from leakguard.tracker import Key, Resource
from leakguard.trackers.fdbase import ScanningTracker
from leakguard.trackers.fddescribe import key_of, probe_socket
from leakguard.trackers.fdorigins import RECORDER
from leakguard.trackers.fdowners import close_descriptors, open_loop_fds
from leakguard.trackers.fdscan import FdKey, is_socket


class SocketTracker(ScanningTracker):
    name = "sockets"
    kind = "socket"

    def snapshot(self) -> Mapping[Key, Any]:
        return self.own_descriptors()

    def wanted(self, is_port: bool) -> bool:
        """Whether a new socket is this tracker's: the ``ports`` tracker takes the listeners."""
        return not is_port

    def new_since(self, before: Mapping[Key, Any], after: Mapping[Key, Any]) -> dict[Key, Any]:
        new = super().new_since(before, after)
        for key in list(new):
            if not isinstance(key, tuple) or not isinstance(key[0], int):
                continue  # a child's socket (ports): decided by that tracker
            if not is_socket(new[key]):
                del new[key]
                continue
            info = probe_socket(key[0])
            # A socket whose family cannot be read stays with ``sockets``, described as such.
            if not self.wanted(info.is_port if info is not None else False):
                del new[key]
        return new

    def describe(self, key: Key, handle: Any) -> Resource:
        fd_key: FdKey = key  # type: ignore[assignment]  # own-process keys are FdKey tuples
        fd = fd_key[0]
        info = probe_socket(fd)
        label = info.text(port=self.kind == "port") if info is not None else f"fd {fd} (unreadable)"
        recorded = RECORDER.socket_for(fd)
        origin = recorded[1] if recorded is not None else None
        resource = Resource(
            self.name,
            key,
            self.kind,
            label,
            origin=Origin.from_raw(origin) if origin else None,
            verb="opened",
            handle=fd_key,
        )
        if self._note:
            resource.notes.append(self._note)
        return resource

    def builtin_ignore(self, resource: Resource) -> str | None:
        key = resource.key
        own = isinstance(key, tuple) and isinstance(key[0], int)
        if own and resource.label.startswith("unix ") and key[0] in open_loop_fds():  # type: ignore[index]  # FdKey
            return "the self-pipe of an asyncio loop left open (reported by the tasks tracker)"
        return None

    def cleanup(self, resources: Sequence[Resource], timeout: float) -> list[str]:
        return close_descriptors([r.handle for r in resources], self.kind)

    def identify(self, obj: object) -> Key | None:
        key = key_of(obj, sockets=True)
        if key is None:
            return None
        # ``leakguard.ignore(server)`` must reach the tracker that would report it.
        info = probe_socket(key[0])
        return key if self.wanted(info.is_port if info is not None else False) else None

"""The ``sockets`` tracker: open socket descriptors that are not listening (TCP and UDP over v4
and v6, unix sockets), described by local and remote address and state."""

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


class SocketTracker(ScanningTracker):
    name = "sockets"
    kind = "socket"

    def snapshot(self, phase: Phase) -> Mapping[DescriptorKey, DescriptorHandle]:
        return self.own_descriptors(phase)

    def wanted(self, is_port: bool) -> bool:
        """Whether a new socket is this tracker's: the ``ports`` tracker takes the listeners."""
        return not is_port

    def wants(self, key: FdKey, st_mode: int) -> bool:
        if not is_socket(st_mode):
            return False
        from leakguard.trackers.descriptors.describe import probe_socket

        info = probe_socket(key[0])
        # A socket whose family cannot be read stays with ``sockets``, described as such.
        return self.wanted(info.is_port if info is not None else False)

    def describe(self, key: DescriptorKey, handle: DescriptorHandle) -> Resource[DescriptorKey]:
        if not own_key(key) or not isinstance(handle, int):
            raise TypeError(f"not a descriptor of this process: {key!r}")
        from leakguard.trackers.descriptors.describe import probe_socket

        fd = key[0]
        info = probe_socket(fd)
        label = info.text(port=self.kind == "port") if info is not None else f"fd {fd} (unreadable)"
        made = self.made(key, handle)
        resource = Resource[DescriptorKey](
            self.name,
            key,
            self.kind,
            label,
            origin=Origin.from_raw(made.origin) if made and made.origin else None,
            verb="detached" if made is not None and made.how == "detach" else "opened",
            handle=key,
            notes=(self._note,) if self._note else (),
        )
        return self.classify(resource, made)

    def builtin_ignore(self, resource: Resource[DescriptorKey]) -> str | None:
        key = resource.key
        if own_key(key) and resource.label.startswith("unix ") and key[0] in self.open_loop_fds():
            return "the self-pipe of an asyncio loop left open (reported by the tasks tracker)"
        return None

    def outcome_name(self, key: FdKey) -> str:
        return self.kind

    def cleanup(self, resources: Sequence[Resource[DescriptorKey]], timeout: float) -> list[str]:
        return self.close(resources)

    def identify(self, obj: object) -> DescriptorKey | None:
        from leakguard.trackers.descriptors.describe import key_of, probe_socket

        key = key_of(obj, sockets=True)
        if key is None:
            return None
        # ``leakguard.ignore(server)`` must reach the tracker that would report it.
        info = probe_socket(key[0])
        return key if self.wanted(info.is_port if info is not None else False) else None

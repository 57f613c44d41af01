"""The ``ports`` tracker: listening TCP (and unix) sockets and bound UDP sockets, in this process
and in the processes it started. A child's port is freed when the child is stopped, which is
the ``processes`` tracker's cleanup: the report links the two."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeGuard

from leakguard.core.tracker import Phase, Resource
from leakguard.trackers.descriptors.base import DescriptorHandle, DescriptorKey, own_key
from leakguard.trackers.descriptors.children import (
    ChildKey,
    ChildPort,
    child_ports,
    child_sockets,
    command_of,
    has_children,
)
from leakguard.trackers.descriptors.scan import is_socket
from leakguard.trackers.descriptors.sockets import SocketTracker
from leakguard.trackers.processes.tree import SEEN_IN_PHASE


def _is_child_key(key: object) -> TypeGuard[ChildKey]:
    return isinstance(key, tuple) and len(key) == 3 and key[0] == "pid"


class PortTracker(SocketTracker):
    name = "ports"
    kind = "port"

    def snapshot(self, phase: Phase) -> Mapping[DescriptorKey, DescriptorHandle]:
        own = self.own_descriptors(phase)
        # No child, no child's port: the usual case. When the processes tracker looked in this
        # phase and saw no process, that is the answer; else one ``waitid`` (≈ 1.8 µs on a
        # Firecracker VM, its ``ECHILD`` raised as an exception), twice a test. The processes
        # tracker's look shares its one blind spot: a child forked from C on another thread
        # than the main one, with no Python-level spawn since its last full read.
        seen = phase._shared.get(SEEN_IN_PHASE)
        if (seen is not None and not seen) or not has_children():
            return own
        merged: dict[DescriptorKey, DescriptorHandle] = dict(own)
        for key, pid in child_sockets().items():
            merged[key] = pid
        return merged

    def wanted(self, is_port: bool) -> bool:
        return is_port

    def new_since(
        self,
        before: Mapping[DescriptorKey, DescriptorHandle],
        after: Mapping[DescriptorKey, DescriptorHandle],
    ) -> dict[DescriptorKey, DescriptorHandle]:
        new = super().new_since(before, after)
        children = [k for k in new if _is_child_key(k)]
        if not children:
            return new
        # A forked child holds copies of sockets that were open before the test: those are
        # not ports the test opened (the child itself is the processes tracker's to report).
        inherited = {
            k[2]
            for k, mode in before.items()
            if own_key(k) and isinstance(mode, int) and is_socket(mode)
        }
        candidates: list[ChildKey] = [k for k in children if k[2] not in inherited]
        ports = child_ports(candidates)
        for key in children:
            port = ports.get(key)
            if port is not None:
                new[key] = port
            else:
                del new[key]
        return new

    def describe(self, key: DescriptorKey, handle: DescriptorHandle) -> Resource[DescriptorKey]:
        if not isinstance(handle, ChildPort):
            return super().describe(key, handle)
        return Resource(
            self.name,
            key,
            self.kind,
            handle.label,
            verb="opened",
            handle=handle,
            notes=(
                f"held by process {handle.pid} '{command_of(handle.pid)}' "
                "(reported by the processes tracker, whose cleanup frees the port)",
            ),
        )

    def builtin_ignore(self, resource: Resource[DescriptorKey]) -> str | None:
        if isinstance(resource.handle, ChildPort):
            from leakguard.trackers.descriptors.owners import multiprocessing_helpers

            if resource.handle.pid in multiprocessing_helpers()[1]:
                return "multiprocessing's forkserver (started once per run)"
            return None
        return super().builtin_ignore(resource)

    def cleanup(self, resources: Sequence[Resource[DescriptorKey]], timeout: float) -> list[str]:
        own = [r for r in resources if not isinstance(r.handle, ChildPort)]
        outcomes = iter(self.close(own))
        return [
            f"port held by process {r.handle.pid}: freed when the processes tracker stops it"
            if isinstance(r.handle, ChildPort)
            else next(outcomes)
            for r in resources
        ]

"""``owner_object``: the Python object whose reachability the engine's holder search follows."""

from __future__ import annotations

import gc
import multiprocessing
import multiprocessing.heap
import os
import select
import socket
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from leakguard.core.tracker import Phase, Resource
from leakguard.trackers.descriptors.base import ScanningTracker
from leakguard.trackers.descriptors.fds import FdTracker
from leakguard.trackers.descriptors.sockets import SocketTracker

Make = Callable[[], Any]


@pytest.fixture
def fds() -> Iterator[FdTracker]:
    tracker = FdTracker()
    tracker.install()
    yield tracker
    tracker.uninstall()


@pytest.fixture
def sockets() -> Iterator[SocketTracker]:
    tracker = SocketTracker()
    tracker.install()
    yield tracker
    tracker.uninstall()


def new_resources(tracker: ScanningTracker, make: Make) -> tuple[Any, list[Resource[Any]]]:
    before = dict(tracker.snapshot(Phase("before", 1.0)))
    made = make()
    new = tracker.new_since(before, tracker.snapshot(Phase("after", 1.0)))
    return made, [tracker.describe(key, handle) for key, handle in new.items()]


def test_a_files_owner_is_its_outermost_wrapper(fds: FdTracker, tmp_path: Path) -> None:
    f, (resource,) = new_resources(fds, lambda: open(tmp_path / "x", "w"))  # noqa: SIM115  # closed below
    with f:
        assert fds.owner_object(resource) is f
        assert resource.category == "leak"


def test_a_sockets_owner_is_the_socket(sockets: SocketTracker) -> None:
    pair, resources = new_resources(sockets, socket.socketpair)
    with pair[0], pair[1]:
        assert {id(sockets.owner_object(r)) for r in resources} == {id(s) for s in pair}


def test_a_pipes_owner_is_its_multiprocessing_connection(fds: FdTracker) -> None:
    conns, resources = new_resources(fds, lambda: multiprocessing.Pipe(duplex=False))
    try:
        assert {id(fds.owner_object(r)) for r in resources} == {id(c) for c in conns}
    finally:
        for conn in conns:
            conn.close()


def test_an_epolls_owner_is_found_though_the_collector_does_not_track_it(fds: FdTracker) -> None:
    holder, (resource,) = new_resources(fds, lambda: [select.epoll()])
    with holder[0]:
        assert fds.owner_object(resource) is holder[0]


def test_the_shared_heaps_descriptors_are_owned_by_its_arena(fds: FdTracker) -> None:
    heap = multiprocessing.heap.BufferWrapper._heap  # type: ignore[attr-defined]  # private
    if heap._arenas:
        pytest.skip("this process already has a heap arena")
    value, resources = new_resources(fds, lambda: multiprocessing.Value("B"))
    assert len(resources) == 2  # the arena's file and the mmap's copy of its number
    arena = heap._arenas[0]
    assert all(fds.owner_object(r) is arena for r in resources)
    del value


def test_a_bare_number_has_no_owner_and_is_not_native(fds: FdTracker) -> None:
    ends, resources = new_resources(fds, os.pipe)
    try:
        assert [fds.owner_object(r) for r in resources] == [None, None]
        assert {r.category for r in resources} == {"leak"}
    finally:
        for fd in ends:
            os.close(fd)


def test_looking_up_an_owner_does_not_keep_it_alive(fds: FdTracker, tmp_path: Path) -> None:
    # A file only the owner cache kept alive would stay open: a garbage-only leak never is one.
    f, (resource,) = new_resources(fds, lambda: open(tmp_path / "x", "w"))  # noqa: SIM115  # dropped below
    assert fds.owner_object(resource) is f
    gone = weakref.ref(f)
    del f
    gc.collect()
    assert gone() is None  # collected, so closed

"""What earlier leaks left behind once they were gone: ports closed and pools shut down.

A later test that relied on an earlier test's leftover server or pool (it passes only when that
test leaks) fails with "connection refused" or "cannot schedule new futures after shutdown"
once the leftover is gone, by leakguard's cleanup or by itself. These records let its report
name the earlier test. Bounded: the most recent `KEEP` of each kind.
"""

from __future__ import annotations

import re
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from leakguard.core.tracker import Conclusion
from leakguard.trackers.threads.owners import executor_of

KEEP = 64
_REFUSED = re.compile(r"ECONNREFUSED|connection refused|Errno 111\b", re.IGNORECASE)
_SHUT_DOWN = re.compile(r"cannot schedule new futures after (?:interpreter )?shutdown")
_PORT_IN_LABEL = re.compile(r":(\d+) LISTEN")
_PORT_IN_TEXT = re.compile(r"(?::|port=)(\d{2,5})(?!\d)")
_ADDRESS_NAMES = ("address", "addr", "sa", "sockaddr")


@dataclass
class Gone:
    owner: str
    resource: Conclusion
    how: str  # "closed by leakguard's cleanup after that test" / "gone since"


class Aftermath:
    """The records, kept by the run; `explain` reads them for a failing test."""

    def __init__(self) -> None:
        self.ports: OrderedDict[str, Gone] = OrderedDict()
        self.pools: list[tuple[weakref.ref[Any], Gone]] = []

    # --- recording (leak path only) ------------------------------------------------------------
    def pools_of(self, leaks: Sequence[Conclusion]) -> list[tuple[Any, Conclusion]]:
        """Before cleanup: the thread pools whose workers leaked (a finished worker no longer
        says which pool it served)."""
        found: list[tuple[Any, Conclusion]] = []
        for resource in leaks:
            if resource.tracker == "threads":
                pool = executor_of(resource.handle)
                if pool is not None and all(pool is not p for p, _ in found):
                    found.append((pool, resource))
        return found

    def after_cleanup(
        self,
        owner: str,
        leaks: Sequence[Conclusion],
        residue: Sequence[Conclusion],
        pools: Sequence[tuple[Any, Conclusion]],
    ) -> None:
        left = {id(r) for r in residue}
        how = "closed by leakguard's cleanup after that test"
        for resource in leaks:
            if id(resource) not in left and resource.tracker == "ports":
                self._port(owner, resource, how)
        for pool, resource in pools:
            if getattr(pool, "_shutdown", False):
                gone = Gone(owner, resource, "shut down by leakguard's cleanup after that test")
                self.pools.append((weakref.ref(pool), gone))
                del self.pools[:-KEEP]

    def residue_gone(self, owner: str, resource: Conclusion) -> None:
        """A resource an earlier test left is no longer there (its holder ended)."""
        if resource.tracker == "ports":
            self._port(owner, resource, "gone since")

    def _port(self, owner: str, resource: Conclusion, how: str) -> None:
        port = port_of(resource)
        if port is not None:
            self.ports[port] = Gone(owner, resource, how)
            self.ports.move_to_end(port)
            while len(self.ports) > KEEP:
                self.ports.popitem(last=False)

    # --- explaining ----------------------------------------------------------------------------
    def explain(self, exc: BaseException | None, text: str, root: str | None) -> list[str]:
        """Lines naming the earlier test whose vanished leftover explains this failure."""
        lines: list[str] = []
        if self.ports and _REFUSED.search(text):
            mentioned = set(_PORT_IN_TEXT.findall(text)) | ports_in_frames(exc)
            for port in sorted(mentioned & self.ports.keys()):
                gone = self.ports[port]
                lines.append(
                    f"port {port} was served by a socket leaked by {gone.owner}"
                    f"{_where(gone.resource, root)}, {gone.how}: this test relied on it"
                )
        if self.pools and _SHUT_DOWN.search(text):
            used = list(_frame_selves(exc))
            for ref, gone in self.pools:
                pool = ref()
                if pool is not None and any(pool is obj for obj in used):
                    lines.append(
                        f"the ThreadPoolExecutor it submitted to was made during {gone.owner}"
                        f"{_where(gone.resource, root, 'worker ')} and {gone.how}, as that "
                        "test's leak: this test relied on it"
                    )
        return lines


def port_of(resource: Conclusion) -> str | None:
    match = _PORT_IN_LABEL.search(resource.label)
    return match.group(1) if match else None


def _where(resource: Conclusion, root: str | None, what: str = "") -> str:
    if resource.origin is None:
        return ""
    return f" ({what}{resource.verb} at {resource.origin.format(root)})"


def _frames(exc: BaseException | None) -> Iterator[dict[str, Any]]:
    """The locals of every frame of ``exc``'s traceback and of the exceptions it chains."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(seen) < 8:
        seen.add(id(exc))
        tb: TracebackType | None = exc.__traceback__
        while tb is not None:
            yield tb.tb_frame.f_locals
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__


def ports_in_frames(exc: BaseException | None) -> set[str]:
    """Ports a failed connect was aimed at: an ``address`` tuple or a ``port`` in the frames
    that raised (``socket.create_connection``, ``http.client``, urllib3 and the like)."""
    ports: set[str] = set()
    for names in _frames(exc):
        try:
            for name in _ADDRESS_NAMES:
                value = names.get(name)
                if isinstance(value, tuple) and len(value) >= 2 and isinstance(value[1], int):
                    ports.add(str(value[1]))
            for holder in (names, getattr(names.get("self"), "__dict__", {})):
                port = holder.get("port")
                if isinstance(port, int) and 0 < port < 65536:
                    ports.add(str(port))
        except Exception:  # an odd object in someone's frame: skip it
            continue
    return ports


def _frame_selves(exc: BaseException | None) -> Iterator[object]:
    for names in _frames(exc):
        if "self" in names:
            yield names["self"]

"""Naming the polluter from one run: when a test fails the way leftovers make tests fail ("address
already in use", "too many open files"), and an earlier test's residue explains it, say which."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from leakguard.core.tracker import Conclusion

_IN_USE = re.compile(r"EADDRINUSE|address already in use|Errno 98\b", re.IGNORECASE)
_TOO_MANY = re.compile(r"EMFILE|too many open files|Errno 24\b", re.IGNORECASE)
_PORT_IN_TEXT = re.compile(r"(?<![\d.])(\d{2,5})(?!\d)")
_PORT_IN_LABEL = re.compile(r":(\d+) LISTEN")
# What ``__del__`` says of an unclosed object: its file name or its local address.
_UNCLOSED = re.compile(r"ResourceWarning: unclosed (?:file )?<([^>]*)>")
_NAME = re.compile(r"name='([^']+)'")
_LADDR = re.compile(r"laddr=\('([^']*)', (\d+)")


def explain(failure: str, residue: Iterable[tuple[str, Conclusion]], root: str | None) -> list[str]:
    """Lines naming the earlier owners whose leftovers explain ``failure``, if any."""
    entries = list(residue)
    lines: list[str] = []
    if _IN_USE.search(failure):
        ports = [(owner, r) for owner, r in entries if r.tracker == "ports"]
        mentioned = set(_PORT_IN_TEXT.findall(failure))
        named = [(o, r) for o, r in ports if _port_of(r) in mentioned] or ports
        for owner, resource in named:
            port = _port_of(resource) or "?"
            where = f" (opened at {resource.origin.format(root)})" if resource.origin else ""
            lines.append(f"port {port} is held by a socket leaked by {owner}{where}")
    for unclosed in _UNCLOSED.findall(failure):
        for owner, resource in _unclosed_in(unclosed, entries):
            where = f" (opened at {resource.origin.format(root)})" if resource.origin else ""
            lines.append(
                f"the unclosed object of the ResourceWarning is {resource.description}, "
                f"leaked by {owner}{where}"
            )
    if _TOO_MANY.search(failure):
        counts = Counter(owner for owner, r in entries if r.tracker in ("fds", "sockets", "ports"))
        for owner, count in counts.most_common(3):
            lines.append(f"{count} descriptors are still held by what {owner} leaked")
    return lines


def _unclosed_in(
    unclosed: str, entries: list[tuple[str, Conclusion]]
) -> list[tuple[str, Conclusion]]:
    """The residue the warning's object is: by file name (a relative one by its tail) or by
    local address; never by descriptor number, which is reused."""
    name = _NAME.search(unclosed)
    if name and not name.group(1).isdigit():
        path = name.group(1)
        tail = path if path.startswith("/") else "/" + path.removeprefix("./")
        return [(o, r) for o, r in entries if r.tracker == "fds" and f"{tail} " in r.description]
    laddr = _LADDR.search(unclosed)
    if laddr:
        # Labels read "tcp 127.0.0.1:8000 LISTEN", "tcp 127.0.0.1:51234 -> 127.0.0.1:8000 …".
        address = f"{laddr.group(1)}:{laddr.group(2)}"
        return [
            (o, r)
            for o, r in entries
            if r.tracker in ("sockets", "ports") and r.label.split()[1:2] == [address]
        ]
    return []


def _port_of(resource: Conclusion) -> str | None:
    match = _PORT_IN_LABEL.search(resource.label)
    return match.group(1) if match else None

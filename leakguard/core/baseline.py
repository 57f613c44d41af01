"""Known leaks: a file of (owner, tracker, description) that are reported but do not fail, so a
big suite can adopt leakguard today and ratchet the file down."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from typing import Any

from leakguard.core.jsonfile import write_json_atomic
from leakguard.core.tracker import Conclusion

_NUMBER = re.compile(r"\d+")
VERSION = 1


# pytest's temporary folders differ with how the suite runs (xdist adds popen-gwN/) and from
# run to run; so do tempfile's random names.
_PYTEST_TMP = re.compile(r"/[^\s'\"]*?/pytest-of-[^/\s]+/pytest-#+/(?:popen-gw#+/)?")
_TEMPFILE = re.compile(r"/tmp[a-z0-9_]{8}(?=[/\s'\"]|$)")


def normalize(description: str) -> str:
    """Pids, ports, fd numbers, thread counters and temporary folders change between runs and
    with how the suite is run (xdist, -k, random order): compare without them."""
    folded = _NUMBER.sub("#", _TEMPFILE.sub("/<tmp>", description))
    return _PYTEST_TMP.sub("<tmp>/", folded).replace("/popen-gw#/", "/")


class BaselineError(ValueError):
    """The baseline file is unreadable; the message names it."""


class Baseline:
    def __init__(self, entries: Iterable[tuple[str, str, str]] = ()) -> None:
        self._known = set(entries)

    def __len__(self) -> int:
        return len(self._known)

    @classmethod
    def load(cls, path: str, source: str) -> Baseline:
        """A missing file in an existing folder is an empty baseline (the first adoption run);
        a missing folder or a malformed file is an error naming the option."""
        if not os.path.exists(path):
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder):
                raise BaselineError(
                    f"{source}: baseline file {path!r}: the directory {folder!r} does not exist"
                )
            return cls()
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
            entries = [_entry(e, n) for n, e in enumerate(data["known"], start=1)]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BaselineError(f"{source}: cannot read baseline file {path!r}: {exc}") from None
        return cls(entries)

    def knows(self, owner: str, resource: Conclusion | dict[str, Any]) -> bool:
        if isinstance(resource, Conclusion):
            tracker, description = resource.tracker, resource.description
        else:
            tracker, description = resource["tracker"], resource["description"]
        return (owner, tracker, normalize(description)) in self._known

    def unseen(self, findings: Iterable[dict[str, Any]]) -> int:
        """How many known leaks no finding of this run matched: fixed, or not run this time."""
        seen = {
            (f["owner"], leak["tracker"], normalize(leak["description"]))
            for f in findings
            for leak in f["leaks"]
        }
        return len(self._known - seen)

    @staticmethod
    def write(path: str, findings: Iterable[dict[str, Any]]) -> int:
        """Write every leak of ``findings`` as known; return how many entries."""
        entries = sorted(
            {
                (f["owner"], leak["tracker"], normalize(leak["description"]))
                for f in findings
                for leak in f["leaks"]
            }
        )
        data = {
            "version": VERSION,
            "comment": "Known leaks: reported, not failed. Rewrite: --leakguard-update-baseline.",
            "known": [{"owner": o, "tracker": t, "description": d} for o, t, d in entries],
        }
        write_json_atomic(path, data)
        return len(entries)


def _entry(entry: Any, number: int) -> tuple[str, str, str]:
    owner, tracker, description = (entry[k] for k in ("owner", "tracker", "description"))
    if not (isinstance(owner, str) and isinstance(tracker, str) and isinstance(description, str)):
        raise ValueError(f"entry {number}: owner, tracker and description must be strings")
    return owner, tracker, description

"""A third-party tracker: files left in a spool folder. Used by tests/test_extension.py."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from leakguard import Phase, Resource, Tracker


class SpoolTracker(Tracker[str, None]):
    """Identities are file names (``str``); there is no handle (``None``)."""

    name = "spool"

    def __init__(self) -> None:
        self.folder = os.environ["SPOOL_DIR"]

    def snapshot(self, phase: Phase) -> Mapping[str, None]:
        # Identities only: this runs twice around every test.
        return dict.fromkeys(os.listdir(self.folder))

    def describe(self, key: str, handle: None) -> Resource[str]:
        # Only for what is new after the test: the place for anything slow.
        return Resource(self.name, key, "spool", repr(key), verb="written")

    def cleanup(self, resources: Sequence[Resource[str]], timeout: float) -> list[str]:
        for resource in resources:
            os.remove(os.path.join(self.folder, resource.key))
        return [f"spool file {resource.key} removed" for resource in resources]

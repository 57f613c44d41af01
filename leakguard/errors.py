"""The exception and warning types leakguard raises."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from leakguard.core.tracker import Conclusion


class LeakError(AssertionError):
    """Resources outlived the checked block; ``.leaks`` lists them."""

    def __init__(self, message: str, leaks: Sequence[Conclusion]) -> None:
        super().__init__(message)
        self.leaks: list[Conclusion] = list(leaks)


class LeakWarning(pytest.PytestWarning):
    """Issued for a leak when ``leakguard_action = warn``."""


class LeakguardInternalWarning(pytest.PytestWarning):
    """A tracker failed inside leakguard; it is disabled and the user's test result stands."""

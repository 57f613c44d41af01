"""leakguard's own modules are imported straight from their files, past pytest's assertion
rewriter.

pytest marks the packages of every distribution with a ``pytest11`` entry point for assertion
rewriting, so from a wheel install each of leakguard's modules imported during a run went
through the rewriter's finder and loader (its checks, its own cache of rewritten code): ≈ 130 M
instructions of a checked run's start-up (≈ 30 M of a run that checks nothing), for modules
whose few ``assert`` statements are internal invariants nobody reads through pytest's
introspection. From an editable install, which pytest does not mark, every import still asked
the rewriter and the finders before the path finder (≈ 7 M). A finder placed just before the
rewriter hands ``leakguard.*`` modules to the standard path finder; every other import goes
to the finders as before. The top-level package, ``leakguard.plugin`` and the entry point are
loaded before this runs, as pytest expects of a marked package (it warns about a marked module
imported past its hook, which none of these is)."""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

_REWRITER = "AssertionRewritingHook"
_MARK = "leakguard_own_modules"


class OwnModulesFinder:
    """A meta path finder (by protocol) for ``leakguard.*``: the standard path finder's spec."""

    leakguard_own_modules = True

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("leakguard.") or path is None:
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, path, target)


def install() -> OwnModulesFinder | None:
    """Put a finder just before pytest's assertion rewriter and return it; None when there is
    no rewriter to go past (``--assert=plain``, leakguard imported outside pytest) or one of
    these finders is in front of it already (an outer run in the same process)."""
    finders = sys.meta_path
    for index, finder in enumerate(finders):
        if getattr(finder, _MARK, False):
            return None
        if type(finder).__name__ == _REWRITER:
            own = OwnModulesFinder()
            finders.insert(index, own)
            return own
    return None


def uninstall(finder: OwnModulesFinder | None) -> None:
    """Take out what `install` put in (at the run's end: a later run puts its own)."""
    if finder is not None and finder in sys.meta_path:
        sys.meta_path.remove(finder)

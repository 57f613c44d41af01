"""The leak path's code is loaded on the first leak, and loading it opens no file.

A test that used up every descriptor is exactly the kind that leaks, and an import opens its
file: `leakguard.core.leakpath` reads the code when the trackers are created and runs it from
memory. These tests hold every leak path to that, and every lazy import in leakguard to the list.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import leakguard
from leakguard.core import leakpath
from tests.support.options import QUIET, SHORT_GRACE

PACKAGE = Path(leakguard.__file__).parent

# Every file or folder of leakguard opened or listed from the first test's setup on.
PROBE = """
import os, sys
import pytest

PACKAGE = os.path.dirname(sys.modules["leakguard"].__file__)
SEEN = []
ARMED = []

def _hook(event, args):
    if ARMED and event in ("open", "os.listdir", "os.scandir") and args:
        path = args[0]
        if isinstance(path, str) and path.startswith(PACKAGE):
            SEEN.append(path)

sys.addaudithook(_hook)

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    ARMED.append(True)

def pytest_sessionfinish(session):
    ARMED.clear()
    print(f"\\nleakguard files opened during the tests: {len(SEEN)}")
    for path in sorted(set(SEEN)):
        print("  opened", os.path.relpath(path, PACKAGE))
"""

# One test per kind of leak, so every built-in tracker's leak path runs (and is loaded).
EVERY_LEAK = """
import asyncio, os, selectors, socket, subprocess, sys, threading, time

KEEP = []

def test_thread():
    threading.Thread(target=time.sleep, args=(1.0,), daemon=True).start()

def test_task():
    loop = asyncio.new_event_loop()
    KEEP.append(loop.create_task(asyncio.sleep(3600)))
    KEEP.append(loop)

def test_process():
    KEEP.append(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]))

def test_socket():
    KEEP.append(socket.socket())

def test_port():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    KEEP.append(server)

def test_fd():
    KEEP.append(open(os.devnull))

class Cycle:
    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.me = self

def test_garbage():
    Cycle()

def test_imports_a_module_of_leakguard():
    pass  # case only
    import leakguard.servers.logfile  # control only
"""


@pytest.mark.parametrize("case", ["case", "control"])
def test_no_leak_path_opens_a_file_of_leakguard(pytester: pytest.Pytester, case: str) -> None:
    pytester.makeconftest(PROBE)
    drop = "# control only" if case == "case" else "# case only"
    source = "\n".join(line for line in EVERY_LEAK.splitlines() if drop not in line)
    pytester.makepyfile(test_it=source)
    result = pytester.runpytest_subprocess(
        "--leakguard", *QUIET, *SHORT_GRACE, "-s", "-W", "ignore::ResourceWarning", timeout=60
    )
    result.assert_outcomes(passed=8, errors=6)  # garbage is reported, not failed
    result.stdout.fnmatch_lines(["*leakguard: test_it.py::test_process leaked 1 resource*"])
    if case == "case":
        result.stdout.fnmatch_lines(["leakguard files opened during the tests: 0"])
    else:  # the probe sees an import that does open a file
        result.stdout.fnmatch_lines(["  opened servers*logfile*"])


def _module_of(package: str, name: str) -> str:
    """``from package import name``: the module imported (``name`` itself when a module)."""
    candidate = f"{package}.{name}"
    return candidate if (PACKAGE.parent / f"{candidate.replace('.', '/')}.py").exists() else package


def _imports_in_functions(node: ast.AST, in_function: bool = False) -> list[tuple[int, str]]:
    """``(line, module)`` of each leakguard import inside a function, not under TYPE_CHECKING."""
    found: list[tuple[int, str]] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            continue
        if in_function and isinstance(child, ast.ImportFrom) and child.module:
            if child.module.startswith("leakguard"):
                found += [(child.lineno, _module_of(child.module, a.name)) for a in child.names]
        elif in_function and isinstance(child, ast.Import):
            found += [(child.lineno, a.name) for a in child.names if a.name.startswith("leakguard")]
        inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
        found += _imports_in_functions(child, inside)
    return found


def _lazy_imports() -> list[tuple[str, int, str]]:
    """Every import of a leakguard module inside a function, in the whole package."""
    return [
        (str(path.relative_to(PACKAGE.parent)), line, module)
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, module in _imports_in_functions(ast.parse(path.read_text()))
    ]


# Imported inside a function, but never on the leak path: each says when instead.
ON_USE = {
    "leakguard.plugin.checking": "the run's machinery, at configure or collection",
    "leakguard.plugin.hookspecs": "pytest_addhooks, at start-up",
    "leakguard.core.baseline": "at configure, with a baseline file",
    "leakguard.plugin.timeline": "at configure, when a report shows the timeline",
    "leakguard.plugin.pytest_html_extra": "at configure, with pytest-html",
    "leakguard.core.htmlreport": "at the end, writing --leakguard-html",
    "leakguard.plugin.handle": "a test asking for the leakguard fixture, at its setup",
    "leakguard.core.tracker": "with the first tracker, at configure",
    "leakguard.core.origin": "loaded with the run's machinery, before any finding exists",
    "leakguard.core.faults": "loaded at start-up (the stash)",
    "leakguard.trackers.processes.interrupts": "loaded with the run's machinery",
    "leakguard.plugin.reports": "loaded with the run's machinery (a problem needs a run)",
    "leakguard.servers.ports": "free_port and its fixture, on first use",
    "leakguard.servers.fixtures": "the server fixtures, on first use",
    "leakguard.servers.pytest_plugin": "registered with leakguard's hook specs, at start-up",
    "leakguard.trackers.tasks.recording": "the tasks tracker's hooks, when asyncio is imported",
    "leakguard.trackers.tasks.loops": "with the tasks tracker's hooks (recording imports it)",
}


def test_every_lazy_import_is_prepared_or_never_on_the_leak_path() -> None:
    lazy = _lazy_imports()
    assert any(module in leakpath.MODULES for _, _, module in lazy)  # the walk finds them
    unlisted = [
        f"{where}:{line}: {module}"
        for where, line, module in lazy
        if module not in leakpath.MODULES and module not in ON_USE
    ]
    assert unlisted == []


def test_the_leak_paths_modules_import_only_what_is_loaded_before() -> None:
    # At module level they import only each other, leakpath's DEPS and STDLIB, and modules of
    # leakguard that a checked run has loaded by then (the tracker whose leak path it is).
    allowed = {*leakpath.MODULES, *leakpath.DEPS, *leakpath.STDLIB, "os", "sys", "threading"}
    allowed.add("pytest")  # the plugin's reproduce line: only ever under pytest
    outside = []
    for module in leakpath.MODULES:
        tree = ast.parse((PACKAGE.parent / f"{module.replace('.', '/')}.py").read_text())
        for node in tree.body:
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module]
                if isinstance(node, ast.ImportFrom) and node.module != "__future__"
                else []
            )
            for name in names:
                if (
                    name
                    and not name.startswith("leakguard")
                    and name.split(".")[0] not in {n.split(".")[0] for n in allowed}
                ):
                    outside.append(f"{module}: {name}")
    assert outside == []

"""Each suite's source tree and venv under the work dir, rebuilt when its recipe changes."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from .suites import Suite

RECORDER = Path(__file__).with_name("recorder.py")


class SetupError(RuntimeError):
    """A suite could not be set up; the message carries the failing command's output tail."""


def _run(cmd: list[str], log: Path, cwd: Path | None = None) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        done = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(encoding="utf-8").splitlines()[-15:])
        raise SetupError(f"{' '.join(cmd[:4])} … exited {done.returncode}:\n{tail}")


def recipe_key(suite: Suite, repo: Path) -> str:
    """What the venv depends on: a change rebuilds it (leakguard itself is editable, so not it)."""
    recipe = [suite.package, suite.version, suite.layout, *suite.deps, str(repo)]
    return hashlib.sha1(json.dumps(recipe).encode()).hexdigest()[:12]


def site_packages(venv: Path) -> Path:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return venv / "lib" / version / "site-packages"


def _add_plugins(suite: Suite, venv: Path) -> None:
    """The recorder and the suite's harness, copied afresh: editing them needs no rebuild."""
    site = site_packages(venv)
    shutil.copy(RECORDER, site / "realsuites_recorder.py")
    (site / "realsuites_harness.py").write_text(suite.harness, encoding="utf-8")


def _refresh_entry_point(python: Path, repo: Path, log: Path) -> None:
    """An editable install keeps the entry points it was installed with: when leakguard's
    ``pytest11`` entry point moved since (a module renamed), install it again (no deps)."""
    import tomllib

    project = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = project["project"]["entry-points"]["pytest11"]["leakguard"]
    probe = (
        "import importlib.metadata as m; "
        "print(*[e.value for e in m.entry_points(group='pytest11') if e.name == 'leakguard'])"
    )
    found = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, check=False
    ).stdout.strip()
    if found != wanted:
        _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "-e", str(repo)], log)


def source_dir(suite: Suite, home: Path) -> Path:
    """Where pytest runs: the unpacked sdist, or an empty folder for tests shipped in a wheel."""
    if suite.layout == "wheel":
        return home / "run"
    return home / "src" / f"{suite.package}-{suite.version}"


def ensure(suite: Suite, home: Path, repo: Path) -> Path:
    """Set the suite up under ``home`` unless a venv of the same recipe is there; its python."""
    venv = home / "venv"
    marker = home / "ready"
    key = recipe_key(suite, repo)
    python = venv / "bin" / "python"
    if marker.exists() and marker.read_text(encoding="utf-8").strip() == key and python.exists():
        _add_plugins(suite, venv)
        _refresh_entry_point(python, repo, home / "setup.log")
        return python
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    log = home / "setup.log"
    if suite.layout == "sdist":
        download = home / "download"
        spec = f"{suite.package}=={suite.version}"
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-binary",
                ":all:",
                "--no-deps",
                "-d",
                str(download),
                spec,
            ],
            log,
        )
        (archive,) = download.glob("*.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(home / "src", filter="data")
    source_dir(suite, home).mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", str(venv)], log)
    # The released wheel of the same version: same code as the sdist, without a build step.
    packages = [f"{suite.package}=={suite.version}", *suite.deps, "pytest-timeout"]
    _run([str(python), "-m", "pip", "install", "-q", *packages, "-e", str(repo)], log)
    _add_plugins(suite, venv)
    freeze = subprocess.run(
        [str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=False
    )
    (home / "freeze.txt").write_text(freeze.stdout, encoding="utf-8")
    marker.write_text(key, encoding="utf-8")
    return python

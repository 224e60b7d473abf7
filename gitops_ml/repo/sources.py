"""Read-only views of a repository's files: the working tree, or a commit (through adapters.git).

Loading reads through a `FileSource` so that the same code validates and renders the working tree
and any commit of history. Paths are repository-relative POSIX strings.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Protocol

from gitops_ml.types import DEPLOYMENTS_DIR, MODELS_DIR


class FileSource(Protocol):
    """What loading needs from a tree of files."""

    label: str

    def read(self, rel: str) -> bytes:
        """Bytes of a file; FileNotFoundError when it is not a file."""

    def is_file(self, rel: str) -> bool: ...

    def is_dir(self, rel: str) -> bool: ...

    def listdir(self, rel: str) -> list[str]:
        """Sorted entry names of a directory; [] when it does not exist."""

    def walk_files(self, rel: str) -> list[str]:
        """Every file under a directory, recursively, as sorted repository-relative paths."""

    def links_outside(self, rel: str) -> list[tuple[str, str]]:
        """(path, target) of the symbolic links under a directory that point outside it, or
        nowhere (a loop)."""


class WorkTree:
    """The files on disk under a root directory; inside a git work tree, without what git ignores.

    A model version is what git would commit: an ignored `.env`, notebook checkpoint or local venv in a
    model directory must neither change the image tag (CI's clean checkout would compute another) nor
    go into the image.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.label = "working tree"
        self._ignored: tuple[frozenset[str], tuple[str, ...]] | None = None

    def path(self, rel: str) -> Path:
        return self.root / rel if rel else self.root

    def read(self, rel: str) -> bytes:
        p = self.path(rel)
        if not p.is_file():
            raise FileNotFoundError(rel)
        return p.read_bytes()

    def is_file(self, rel: str) -> bool:
        return self.path(rel).is_file()

    def is_dir(self, rel: str) -> bool:
        return self.path(rel).is_dir()

    def listdir(self, rel: str) -> list[str]:
        try:
            return sorted(os.listdir(self.path(rel)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def walk_files(self, rel: str) -> list[str]:
        base = self.path(rel)
        out = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if d not in {"__pycache__", ".git"}]
            for name in filenames:
                if name.endswith((".pyc", ".pyo")):
                    continue
                full = Path(dirpath, name)
                # regular files only: a dangling link (an editor's lock file) or a FIFO is not content
                if os.path.isfile(full):
                    out.append(full.relative_to(self.root).as_posix())
        files, dirs = self.ignored()
        if files or dirs:
            out = [p for p in out if p not in files and not p.startswith(dirs)]
        return sorted(out)

    def ignored(self) -> tuple[frozenset[str], tuple[str, ...]]:
        """(files, directory prefixes ending in '/') git ignores under the root; empty outside git.
        One `git ls-files` per tree, whatever the number of models."""
        if self._ignored is None:
            from gitops_ml.adapters.git import ignored_paths  # noqa: PLC0415 - only trees with models ask

            self._ignored = ignored_paths(self.root)
        return self._ignored

    def links_outside(self, rel: str) -> list[tuple[str, str]]:
        base = self.path(rel).resolve()
        out = []
        for dirpath, dirnames, filenames in os.walk(self.path(rel)):
            dirnames[:] = [d for d in dirnames if d not in {"__pycache__", ".git"}]
            for name in sorted(dirnames + filenames):
                full = Path(dirpath, name)
                if full.is_symlink():
                    try:
                        target = full.resolve()
                    except (RuntimeError, OSError):  # a loop of links resolves nowhere
                        out.append((full.relative_to(self.root).as_posix(), os.readlink(full)))
                        continue
                    if target != base and base not in target.parents:
                        out.append((full.relative_to(self.root).as_posix(), os.readlink(full)))
        return sorted(out)

def read_regular(path: Path | str) -> bytes | None:
    """Bytes of a regular file (a link is followed); None when there is none. A FIFO, a socket or a
    device is never opened: reading a FIFO waits for a writer that never comes."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        with open(path, "rb") as fh:
            return fh.read()
    except (FileNotFoundError, NotADirectoryError):
        return None


class _View:
    """A FileSource that shows another one, minus what a subclass hides from listings."""

    def __init__(self, source: FileSource) -> None:
        self.source = source
        self.label = source.label

    def read(self, rel: str) -> bytes:
        return self.source.read(rel)

    def is_file(self, rel: str) -> bool:
        return self.source.is_file(rel)

    def is_dir(self, rel: str) -> bool:
        return self.source.is_dir(rel)

    def listdir(self, rel: str) -> list[str]:
        return self.source.listdir(rel)

    def walk_files(self, rel: str) -> list[str]:
        return self.source.walk_files(rel)

    def links_outside(self, rel: str) -> list[tuple[str, str]]:
        return self.source.links_outside(rel)


class ModelSubset(_View):
    """Only some models and the deployment files of those models (for a render that re-validates
    only what changed)."""

    def __init__(self, source: FileSource, models: set[str]) -> None:
        super().__init__(source)
        self.models = models

    def listdir(self, rel: str) -> list[str]:
        names = self.source.listdir(rel)
        if rel == MODELS_DIR:
            return [n for n in names if n in self.models]
        if rel.startswith(DEPLOYMENTS_DIR + "/"):
            return [n for n in names if n.rsplit(".", 1)[0] in self.models]
        return names


class WithoutDeployments(_View):
    """No deployments/: validating one model of an old commit must not parse and validate every
    deployment file of that commit (thousands in a large repository)."""

    def is_dir(self, rel: str) -> bool:
        return rel != DEPLOYMENTS_DIR and self.source.is_dir(rel)

    def listdir(self, rel: str) -> list[str]:
        return [] if rel == DEPLOYMENTS_DIR else self.source.listdir(rel)

"""Read-only views of a repository's files: the working tree, or a commit (through adapters.git).

Loading reads through a `FileSource` so that the same code validates and renders the working tree
and any commit of history. Paths are repository-relative POSIX strings.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Protocol


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
        """(path, target) of the symbolic links under a directory that point outside it."""


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
            self._ignored = (frozenset(), ())
            try:
                proc = subprocess.run(
                    ["git", "-C", str(self.root), "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"],
                    capture_output=True, check=False, timeout=60,
                )
            except (OSError, subprocess.TimeoutExpired):
                return self._ignored
            if proc.returncode == 0:
                paths = [p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p]
                self._ignored = (frozenset(p for p in paths if not p.endswith("/")), tuple(p for p in paths if p.endswith("/")))
        return self._ignored

    def links_outside(self, rel: str) -> list[tuple[str, str]]:
        base = self.path(rel).resolve()
        out = []
        for dirpath, dirnames, filenames in os.walk(self.path(rel)):
            dirnames[:] = [d for d in dirnames if d not in {"__pycache__", ".git"}]
            for name in sorted(dirnames + filenames):
                full = Path(dirpath, name)
                if full.is_symlink():
                    target = full.resolve()
                    if target != base and base not in target.parents:
                        out.append((full.relative_to(self.root).as_posix(), os.readlink(full)))
        return sorted(out)

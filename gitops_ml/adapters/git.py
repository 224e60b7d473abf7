"""The only importer of GitPython: open a repository, resolve refs, read trees of commits.

Errors from git become RegistryError with a hint; shallow clones are detected so that a missing
commit reads as "fetch full history", not as "unknown revision".
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Iterator

import git
from git.exc import BadName, GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from gitops_ml.errors import RegistryError

SHALLOW_HINT = "this is a shallow clone; fetch full history (actions/checkout with `fetch-depth: 0`, or `git fetch --unshallow`)"


def open_repo(path: Path) -> git.Repo:
    """The git repository containing path."""
    try:
        return git.Repo(path, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError):
        raise RegistryError(
            f"{path} is not inside a git repository", hint="git history is the model registry: run `git init` and commit"
        ) from None


def is_shallow(repo: git.Repo) -> bool:
    return Path(repo.git_dir, "shallow").exists()


def resolve_commit(repo: git.Repo, ref: str) -> git.Commit:
    try:
        return repo.commit(ref)
    except (BadName, ValueError, GitCommandError):
        hint = SHALLOW_HINT if is_shallow(repo) else "check the name with `git log --oneline` or `git branch -a`"
        raise RegistryError(f"unknown git revision {ref!r}", hint=hint) from None


def repo_prefix(repo: git.Repo, root: Path) -> str:
    """Path of root inside the repository's work tree, '' when root is the top level."""
    top = Path(repo.working_tree_dir or ".").resolve()
    rel = Path(root).resolve().relative_to(top).as_posix()
    return "" if rel == "." else rel


class CommitTree:
    """A FileSource over the files of one commit (for `--base`, pins, diffs)."""

    def __init__(self, repo: git.Repo, commit: git.Commit, prefix: str = "") -> None:
        self.repo = repo
        self.commit = commit
        self.prefix = prefix
        self.label = f"commit {commit.hexsha[:12]}"
        self._tree = commit.tree

    def _full(self, rel: str) -> str:
        return posixpath.join(self.prefix, rel) if self.prefix else rel

    def _obj(self, rel: str) -> git.Object | None:
        full = self._full(rel).strip("/")
        if not full:
            return self._tree
        try:
            return self._tree / full
        except KeyError:
            return None

    def read(self, rel: str) -> bytes:
        obj = self._obj(rel)
        if obj is None or obj.type != "blob":
            raise FileNotFoundError(rel)
        return obj.data_stream.read()  # type: ignore[no-any-return]

    def is_file(self, rel: str) -> bool:
        obj = self._obj(rel)
        return obj is not None and obj.type == "blob"

    def is_dir(self, rel: str) -> bool:
        obj = self._obj(rel)
        return obj is not None and obj.type == "tree"

    def listdir(self, rel: str) -> list[str]:
        obj = self._obj(rel)
        if obj is None or obj.type != "tree":
            return []
        return sorted(item.name for item in obj)  # type: ignore[attr-defined]

    def walk_files(self, rel: str) -> list[str]:
        obj = self._obj(rel)
        if obj is None or obj.type != "tree":
            return []
        out = []
        for item in obj.traverse():  # type: ignore[attr-defined]
            if item.type == "blob":
                full = item.path
                out.append(full[len(self.prefix) + 1 :] if self.prefix else full)
        return sorted(out)

    def blob_ids(self, rel: str) -> Iterator[tuple[str, str]]:
        """(path, git blob id) of every file under rel: a cheap content fingerprint."""
        obj = self._obj(rel)
        if obj is None or obj.type != "tree":
            return
        for item in obj.traverse():  # type: ignore[attr-defined]
            if item.type == "blob":
                yield (item.path[len(self.prefix) + 1 :] if self.prefix else item.path), item.hexsha


def commit_tree(root: Path, ref: str) -> CommitTree:
    repo = open_repo(root)
    return CommitTree(repo, resolve_commit(repo, ref), repo_prefix(repo, root))

"""The only importer of GitPython: open a repository, resolve refs, read trees of commits.

Errors from git become RegistryError with a hint; shallow clones are detected so that a missing
commit reads as "fetch full history", not as "unknown revision".
"""

from __future__ import annotations

import posixpath
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import git
from git.exc import BadName, GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from gitops_ml.errors import RegistryError

# the GitPython repository type, for modules that hold one without importing GitPython
GitRepo = git.Repo

SHALLOW_HINT = "this is a shallow clone; fetch full history (actions/checkout with `fetch-depth: 0`, or `git fetch --unshallow`)"


def open_repo(path: Path) -> git.Repo:
    """The git repository containing path."""
    try:
        return git.Repo(path, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError):
        raise RegistryError(
            f"{path} is not inside a git repository", hint="git history is the model registry: run `git init` and commit"
        ) from None


@dataclass(frozen=True)
class Checkout:
    """A git repository and where a gitops-ml repository sits in its work tree ('' at the top)."""

    repo: git.Repo
    prefix: str


def open_checkout(root: Path) -> Checkout:
    """The git repository holding root, and root's path inside its work tree."""
    repo = open_repo(root)
    return Checkout(repo, repo_prefix(repo, root))


def ignored_paths(root: Path) -> tuple[frozenset[str], tuple[str, ...]]:
    """(files, directory prefixes ending in '/') git ignores under root; empty outside git.
    One `git ls-files` whatever the number of models."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--others", "--ignored", "--exclude-standard", "--directory"],
            capture_output=True, check=False, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return frozenset(), ()
    if proc.returncode != 0:
        return frozenset(), ()
    paths = [p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p]
    return frozenset(p for p in paths if not p.endswith("/")), tuple(p for p in paths if p.endswith("/"))


def private_dir(repo: git.Repo) -> Path:
    """A directory inside .git for gitops-ml's own state: never part of the work tree, never committed."""
    return Path(repo.git_dir) / "gitops-ml"


def head_commit(repo: git.Repo) -> str | None:
    """HEAD's commit id; None before the first commit."""
    try:
        return str(repo.head.commit.hexsha) if repo.head.is_valid() else None
    except (ValueError, GitCommandError):
        return None


def is_shallow(repo: git.Repo) -> bool:
    return Path(repo.git_dir, "shallow").exists()


def resolve_commit(repo: git.Repo, ref: str) -> git.Commit:
    try:
        return repo.commit(ref)
    except (BadName, ValueError, GitCommandError):
        raise _unknown_revision(repo, ref) from None


def repo_prefix(repo: git.Repo, root: Path) -> str:
    """Path of root inside the repository's work tree, '' when root is the top level."""
    top = Path(repo.working_tree_dir or ".").resolve()
    rel = Path(root).resolve().relative_to(top).as_posix()
    return "" if rel == "." else rel


_SYMLINK_MODE = 0o120000


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
        return sorted(item.name for item in obj)

    def walk_files(self, rel: str) -> list[str]:
        obj = self._obj(rel)
        if obj is None or obj.type != "tree":
            return []
        out = []
        for item in obj.traverse():
            if item.type == "blob":
                full = item.path
                out.append(full[len(self.prefix) + 1 :] if self.prefix else full)
        return sorted(out)

    def links_outside(self, rel: str) -> list[tuple[str, str]]:
        obj = self._obj(rel)
        if obj is None or obj.type != "tree":
            return []
        base = self._full(rel).strip("/")
        out = []
        for item in obj.traverse():
            if item.type == "blob" and item.mode == _SYMLINK_MODE:
                target = item.data_stream.read().decode("utf-8", "replace")
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(item.path), target))
                if target.startswith("/") or not (resolved + "/").startswith(base + "/"):
                    out.append((item.path[len(self.prefix) + 1 :] if self.prefix else item.path, target))
        return sorted(out)

    def blob_ids(self, rel: str) -> Iterator[tuple[str, str]]:
        """(path, git blob id) of every file under rel: a cheap content fingerprint."""
        obj = self._obj(rel)
        if obj is None or obj.type != "tree":
            return
        for item in obj.traverse():
            if item.type == "blob":
                yield (item.path[len(self.prefix) + 1 :] if self.prefix else item.path), item.hexsha


def commit_tree(root: Path, ref: str) -> CommitTree:
    repo = open_repo(root)
    return CommitTree(repo, resolve_commit(repo, ref), repo_prefix(repo, root))


# --- bulk reads for the registry: a few git processes per question, never one per commit ----------


@dataclass(frozen=True)
class Change:
    """One file a commit changed: its path and new blob id (None when the commit deleted it)."""

    path: str
    blob: str | None


@dataclass(frozen=True)
class LogEntry:
    """One commit of first-parent history and the watched files it changed."""

    commit: str
    date: str  # committer date, ISO 8601: when the change landed on the branch
    author: str
    email: str
    subject: str
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class TagRef:
    """A tag and the commit it points at; `annotated` is False for a lightweight tag."""

    name: str
    commit: str
    annotated: bool


def run_git(repo: git.Repo, *args: str, stdin: bytes | None = None) -> bytes:
    """Run one git command in the repository; failures become RegistryError with git's message."""
    # a user's config must not change what we parse (colour, quoted paths, root commit diffs)
    cmd = ["git", "-C", str(repo.working_tree_dir or repo.git_dir), "-c", "core.quotePath=false", "-c", "color.ui=never",
           "-c", "log.showRoot=true", *args]
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    except OSError as exc:
        raise RegistryError(f"cannot run git: {exc}", hint="install git and put it on PATH") from None
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        hint = SHALLOW_HINT if is_shallow(repo) else ""
        raise RegistryError(f"git {args[0]} failed: {message[-1] if message else proc.returncode}", hint=hint)
    return proc.stdout


_RECORD = "\x1e"
_FIELD = "\x1f"
_ZERO_ID = "0" * 40


def log_changes(repo: git.Repo, rev: str, pathspecs: Sequence[str]) -> list[LogEntry]:
    """Commits of rev's first-parent history that touch pathspecs, oldest first, with new blob ids.

    First-parent history is the default branch as it happened: a merged pull request shows up as
    its merge commit, which is where CI tags the version and where Argo CD or Flux saw the change.
    """
    out = run_git(
        repo, "log", "--first-parent", "--diff-merges=first-parent", "--raw", "--no-abbrev", "--no-renames",
        "--reverse", f"--format={_RECORD}%H{_FIELD}%cI{_FIELD}%an{_FIELD}%ae{_FIELD}%s", rev, "--", *pathspecs,
    ).decode("utf-8", "replace")
    entries = []
    for record in out.split(_RECORD)[1:]:
        header, _, body = record.partition("\n")
        sha, date, author, email, subject = header.split(_FIELD)
        changes = []
        for line in body.splitlines():
            if not line.startswith(":"):
                continue
            meta, _, path = line.partition("\t")
            new_blob, status = meta.split()[3], meta.split()[4]
            changes.append(Change(path, None if status.startswith("D") or new_blob == _ZERO_ID else new_blob))
        entries.append(LogEntry(sha, date, author, email, subject, tuple(changes)))
    return entries


def read_objects(repo: git.Repo, names: Iterable[str]) -> dict[str, bytes]:
    """Contents of many objects (blob ids or `rev:path`) through one `git cat-file --batch`;
    names that do not exist are left out."""
    unique = list(dict.fromkeys(names))
    if not unique:
        return {}
    out = run_git(repo, "cat-file", "--batch", stdin="".join(f"{n}\n" for n in unique).encode())
    found: dict[str, bytes] = {}
    pos = 0
    for name in unique:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[-1] == b"missing":
            continue
        size = int(header[2])
        found[name] = out[pos : pos + size]
        pos += size + 1
    return found


def list_tree(repo: git.Repo, rev: str, paths: Sequence[str]) -> dict[str, str]:
    """Repository path -> blob id of every file under paths at rev (one `git ls-tree -r`)."""
    out = run_git(repo, "ls-tree", "-r", "-z", "--full-tree", rev, "--", *paths).decode("utf-8", "replace")
    files = {}
    for item in out.split("\0"):
        meta, _, path = item.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob":
            files[path] = parts[2]
    return files


def list_dirs(repo: git.Repo, rev: str, path: str) -> list[str]:
    """Names of the directories directly under path at rev ([] when path is not a directory)."""
    out = run_git(repo, "ls-tree", "-z", "--full-tree", rev, "--", f"{path.rstrip('/')}/").decode("utf-8", "replace")
    names = []
    for item in out.split("\0"):
        meta, _, full = item.partition("\t")
        if meta.split()[1:2] == ["tree"]:
            names.append(posixpath.basename(full))
    return sorted(names)


def list_tags(repo: git.Repo, patterns: Sequence[str] = ()) -> list[TagRef]:
    """Tags matching fnmatch patterns (all when none), each peeled to its commit; one process."""
    out = run_git(
        repo, "for-each-ref", f"--format=%(refname:strip=2){_FIELD}%(objecttype){_FIELD}%(objectname){_FIELD}%(*objectname)",
        *(f"refs/tags/{p}" for p in patterns or ("",)),
    ).decode("utf-8", "replace")
    tags = []
    for line in out.splitlines():
        name, kind, obj, peeled = line.split(_FIELD)
        tags.append(TagRef(name, peeled or obj, kind == "tag"))
    return tags


def rev_parse(repo: git.Repo, rev: str) -> str:
    """Commit id of rev; RegistryError (with the shallow-clone hint when it applies) when unknown."""
    try:
        return run_git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").decode().strip()
    except RegistryError:
        raise _unknown_revision(repo, rev) from None


def _unknown_revision(repo: git.Repo, rev: str) -> RegistryError:
    if not repo.head.is_valid():
        return RegistryError(f"{repo.working_tree_dir} has no commits yet, so git has no {rev!r}", hint="commit the repository first: git history is the model registry")
    hint = SHALLOW_HINT if is_shallow(repo) else "check the name with `git log --oneline` or `git branch -a`"
    return RegistryError(f"unknown git revision {rev!r}", hint=hint)


def create_annotated_tags(repo: git.Repo, tags: Sequence[tuple[str, str, str]]) -> None:
    """Create annotated tags (name, commit, message) in one transaction: all or none.

    Tag objects are written by one `git hash-object --stdin-paths` and the refs by one
    `git update-ref --stdin`, whose `create` refuses a ref that already exists, so a concurrent
    tagger can never be overwritten.
    """
    if not tags:
        return
    ident = run_git(repo, "var", "GIT_COMMITTER_IDENT").decode().strip()
    with tempfile.TemporaryDirectory(prefix="gitops-ml-tags-") as tmp:
        paths = []
        for i, (name, commit, message) in enumerate(tags):
            body = f"object {commit}\ntype commit\ntag {name}\ntagger {ident}\n\n{message}\n"
            path = Path(tmp, f"{i}.tag")
            path.write_text(body, encoding="utf-8")
            paths.append(str(path))
        ids = run_git(repo, "hash-object", "-t", "tag", "-w", "--stdin-paths", stdin="\n".join(paths).encode() + b"\n")
    object_ids = ids.decode().split()
    transaction = "".join(f"create refs/tags/{name} {oid}\n" for (name, _, _), oid in zip(tags, object_ids))
    run_git(repo, "update-ref", "--stdin", stdin=("start\n" + transaction + "commit\n").encode())


def push_refs(repo: git.Repo, remote: str, refs: Sequence[str]) -> None:
    """Push refs to a remote in one `git push`; a rejection is a RegistryError naming the remote."""
    if refs:
        run_git(repo, "push", "--quiet", remote, *refs)


def ancestry(repo: git.Repo, commits: Iterable[str], head: str) -> dict[str, str]:
    """How each commit stands against head: "behind" (an ancestor of head), "ahead" (a descendant),
    "diverged", or "unknown" (not in this clone). One `git merge-base --is-ancestor` per answer."""
    out: dict[str, str] = {}
    for commit in set(commits) - {head}:
        if not _is_commit(repo, commit):
            out[commit] = "unknown"
        elif _is_ancestor(repo, commit, head):
            out[commit] = "behind"
        elif _is_ancestor(repo, head, commit):
            out[commit] = "ahead"
        else:
            out[commit] = "diverged"
    return out


def _is_commit(repo: git.Repo, commit: str) -> bool:
    proc = subprocess.run(
        ["git", "-C", str(repo.working_tree_dir or repo.git_dir), "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True, check=False,
    )
    return proc.returncode == 0


def _is_ancestor(repo: git.Repo, ancestor: str, descendant: str) -> bool:
    proc = subprocess.run(
        ["git", "-C", str(repo.working_tree_dir or repo.git_dir), "merge-base", "--is-ancestor", ancestor, descendant],
        capture_output=True, check=False,
    )
    return proc.returncode == 0

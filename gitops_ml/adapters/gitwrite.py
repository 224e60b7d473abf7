"""The writing half of the git adapter, for edits: dirty checks, a commit on a branch, the commits a
branch holds, and a push to origin that never overwrites someone else's push.

Kept apart from adapters.git (the reads) so the two sides evolve without touching each other; it
goes through the same GitPython repository object. Git's failures become EditError (refused before
anything changed) or ExternalToolError (the remote refused); nothing here prints.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from typing import Sequence

import git
from git.exc import GitCommandError

from gitops_ml.adapters.git import Checkout
from gitops_ml.errors import EditError, ExternalToolError

ORIGIN = "origin"


@dataclass(frozen=True)
class BranchCommit:
    """The commit an edit made on its branch; `created` is False when the branch already held it."""

    branch: str
    sha: str
    base_branch: str
    created: bool


@dataclass(frozen=True)
class CommitSummary:
    """One commit as the ownership check of an edit's branch reads it."""

    sha: str
    author: str
    subject: str
    trailers: tuple[str, ...]  # values of the trailer asked for
    message: str


def _stderr(exc: GitCommandError) -> str:
    text = (exc.stderr or "").strip()
    text = re.sub(r"^stderr: '?|'$", "", text).strip()
    return text or str(exc)


class GitWriter:
    """One repository's working tree, as the edits see it."""

    def __init__(self, checkout: Checkout) -> None:
        self.repo: git.Repo = checkout.repo
        self.prefix = checkout.prefix

    def full(self, rel: str) -> str:
        """Repository-relative path of a path relative to the gitops-ml root."""
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def current_branch(self) -> str | None:
        """Name of the checked-out branch; None when HEAD is detached."""
        try:
            return self.repo.git.symbolic_ref("-q", "--short", "HEAD") or None
        except GitCommandError:
            return None

    def has_commits(self) -> bool:
        try:
            self.repo.git.rev_parse("--verify", "-q", "HEAD")
        except GitCommandError:
            return False
        return True

    def dirty(self, rels: Sequence[str]) -> list[str]:
        """Which of these files have uncommitted changes (staged or not), relative to the root."""
        if not rels:
            return []
        out = self.repo.git.status("--porcelain", "-z", "--untracked-files=all", "--", *[self.full(r) for r in rels])
        paths = []
        for entry in out.split("\0"):
            if len(entry) > 3:
                path = entry[3:]
                paths.append(path[len(self.prefix) + 1 :] if self.prefix else path)
        return sorted(paths)

    def restore_from_head(self, rel: str) -> None:
        """Make a directory what HEAD has: tracked files restored, untracked (not ignored) ones removed."""
        full = self.full(rel)
        try:
            if self.repo.git.ls_tree("HEAD", "--", full):
                self.repo.git.checkout("HEAD", "--", full)
            self.repo.git.clean("-fdq", "--", full)
        except GitCommandError as exc:
            raise EditError(f"cannot restore {rel} from HEAD: {_stderr(exc)}") from None

    def check_branch_name(self, name: str) -> None:
        try:
            self.repo.git.check_ref_format("--branch", name)
        except GitCommandError:
            raise EditError(f"{name!r} is not a valid git branch name") from None

    def branch_sha(self, name: str) -> str | None:
        try:
            return self.repo.git.rev_parse("--verify", "-q", f"refs/heads/{name}") or None
        except GitCommandError:
            return None

    def remote_url(self, name: str = ORIGIN) -> str | None:
        try:
            return self.repo.git.remote("get-url", name) or None
        except GitCommandError:
            return None

    def commit_on_branch(self, branch: str, rels: Sequence[str], message: str, *, reuse: Sequence[str] = ()) -> BranchCommit:
        """Commit the working tree's version of rels on top of HEAD as `branch` (created or moved
        there), without checking it out: HEAD, the index and the working tree stay as they are.
        A commit of the branch (or one of `reuse`, e.g. origin's) with the same tree and parent is
        reused, so the same inputs give the same branch."""
        base = self.current_branch()
        if base is None:
            raise EditError("HEAD is detached", hint="check out the branch the pull request should target, e.g. `git switch main`")
        head = self.repo.git.rev_parse("HEAD")
        paths = [self.full(r) for r in rels]
        index = tempfile.NamedTemporaryFile(prefix="gitops-ml-index-", delete=False)
        index.close()
        env = {"GIT_INDEX_FILE": index.name}
        try:
            # a private index: the user's staged changes are neither committed nor disturbed
            self.repo.git.read_tree("HEAD", env=env)
            self.repo.git.add("-A", "--", *paths, env=env)
            tree = self.repo.git.write_tree(env=env)
        except GitCommandError as exc:
            raise EditError(f"cannot stage the edit: {_stderr(exc)}") from None
        finally:
            os.unlink(index.name)
        existing = self.branch_sha(branch)
        for candidate in dict.fromkeys(c for c in (existing, *reuse) if c):
            if self._same_commit(candidate, tree, head):
                if candidate != existing:
                    self._set_branch(branch, candidate)
                return BranchCommit(branch, candidate, base, created=False)
        try:
            sha = self.repo.git.commit_tree(tree, "-p", head, "-m", message)
        except GitCommandError as exc:
            raise EditError(f"cannot commit on branch {branch!r}: {_stderr(exc)}") from None
        self._set_branch(branch, sha)
        return BranchCommit(branch, sha, base, created=True)

    def _same_commit(self, sha: str, tree: str, parent: str) -> bool:
        try:
            return bool(
                self.repo.git.rev_parse(f"{sha}^{{tree}}") == tree
                and self.repo.git.rev_list("--parents", "-n", "1", sha).split()[1:] == [parent]
            )
        except GitCommandError:
            return False  # not in this clone (yet)

    def _set_branch(self, branch: str, sha: str) -> None:
        try:
            self.repo.git.update_ref(f"refs/heads/{branch}", sha)
        except GitCommandError as exc:
            raise EditError(f"cannot move branch {branch!r}: {_stderr(exc)}") from None

    def switch_to(self, branch: str, rels: Sequence[str]) -> None:
        """Check out branch, whose commit holds the working tree's version of rels on top of HEAD."""
        # the working tree already holds the branch's version of rels: staging them lets git switch
        try:
            self.repo.git.add("-A", "--", *[self.full(r) for r in rels])
            self.repo.git.checkout("-q", branch)
        except GitCommandError as exc:
            raise EditError(f"committed on {branch!r} but cannot check it out: {_stderr(exc)}") from None

    def commits_between(self, base: str, tip: str, trailer: str) -> list[CommitSummary]:
        """Commits reachable from tip but not from base, newest first, with the values of one
        message trailer (parsed by git, as `git interpret-trailers` does)."""
        fmt = f"%H%x1f%an%x1f%s%x1f%(trailers:key={trailer},valueonly,separator=%x1d)%x1f%B%x1e"
        try:
            out = self.repo.git.log(f"--format={fmt}", f"{base}..{tip}", "--")
        except GitCommandError as exc:
            raise EditError(f"cannot read the commits of {tip[:12]}: {_stderr(exc)}") from None
        commits = []
        for record in out.split("\x1e"):
            fields = record.strip("\n").split("\x1f")
            if len(fields) == 5:
                sha, author, subject, values, message = fields
                commits.append(CommitSummary(sha, author, subject, tuple(v.strip() for v in values.split("\x1d") if v.strip()), message))
        return commits

    def fetch_branch(self, branch: str, remote: str = ORIGIN) -> str | None:
        """The commit `branch` has on the remote now (fetched, so its history can be read), or
        None when the remote has no such branch."""
        try:
            listed = str(self.repo.git.ls_remote("--heads", remote, f"refs/heads/{branch}"))
            if not listed.strip():
                return None
            tracking = f"refs/remotes/{remote}/{branch}"
            self.repo.git.fetch("--quiet", "--no-tags", remote, f"+refs/heads/{branch}:{tracking}")
            return str(self.repo.git.rev_parse("--verify", "-q", f"{tracking}^{{commit}}"))
        except GitCommandError as exc:
            raise ExternalToolError(f"cannot read branch {branch!r} from {remote}: {_stderr(exc)}",
                                    hint=f"check that `git fetch {remote}` works") from None

    def push(self, branch: str, *, expected: str | None, remote: str = ORIGIN) -> None:
        """Push branch to the remote, replacing what an earlier run of the same edit pushed there,
        but only if the remote's branch is still `expected` (None: it must not exist): a push
        someone made in the meantime is never overwritten."""
        if self.remote_url(remote) is None:
            raise EditError(f"there is no {remote!r} remote to push to", hint=f"add one with `git remote add {remote} URL`")
        ref = f"refs/heads/{branch}"
        try:
            self.repo.git.push("--porcelain", f"--force-with-lease={ref}:{expected or ''}", remote, f"{ref}:{ref}")
        except GitCommandError as exc:
            said = f"{exc.stdout or ''}\n{exc.stderr or ''}"
            if "stale info" in said or "fetch first" in said or "already exists" in said:
                raise ExternalToolError(
                    f"branch {branch!r} changed on {remote} while gitops-ml was running; nothing was overwritten",
                    hint="someone pushed to it: look at what they pushed, then run the same command again",
                ) from None
            raise ExternalToolError(f"{remote} rejected the push of {branch!r}: {_stderr(exc)}", hint="fix the remote's complaint") from None

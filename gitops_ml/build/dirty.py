"""Working-tree models whose files differ from HEAD: their images carry a `<sha>-dirty` revision
label, and a push of them is refused unless asked.
"""

from __future__ import annotations

import dataclasses
import posixpath
from typing import TYPE_CHECKING, Sequence

from gitops_ml.adapters import git as gitx
from gitops_ml.build.plan import ImagePlan
from gitops_ml.errors import (
    GitopsMlError,
)
from gitops_ml.repo.handle import Repository

if TYPE_CHECKING:
    pass


def current_revision(repository: Repository) -> str:
    """HEAD's commit, for the revision label of images built from the working tree ("" without git)."""
    try:
        checkout = repository.checkout()
    except GitopsMlError:
        return ""  # not a git repository: git is optional for a build
    return gitx.head_commit(checkout.repo) or ""


REVISION_LABEL = "org.opencontainers.image.revision"


def source_date(repository: Repository, revision: str) -> int | None:
    """SOURCE_DATE_EPOCH when set (the reproducible-builds convention), else the commit time of revision."""
    import os  # noqa: PLC0415

    if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        return int(os.environ["SOURCE_DATE_EPOCH"])
    if not revision:
        return None
    try:
        return int(gitx.resolve_commit(repository.checkout().repo, revision.removesuffix("-dirty")).committed_date)
    except GitopsMlError:
        return None


def mark_dirty(repository: Repository, plans: Sequence[ImagePlan]) -> list[ImagePlan]:
    """Plans of the working tree whose model files differ from HEAD get `dirty` and a `<sha>-dirty` revision.

    HEAD's commit does not hold the code such an image carries, and its content tag is not the one
    the committed deploy/ references. Versions read from history, and trees outside git, are left as they are.
    """
    if not any(plan.version.commit is None for plan in plans):
        return list(plans)
    try:
        checkout = repository.checkout()
    except GitopsMlError:
        return list(plans)  # not a git repository: git is optional for a build
    repo, prefix = checkout.repo, checkout.prefix
    if gitx.head_commit(repo) is None:
        return list(plans)
    out = []
    for plan in plans:
        if plan.version.commit is not None:
            out.append(plan)
            continue
        spec = posixpath.join(prefix, plan.model_dir) if prefix else plan.model_dir
        status = gitx.run_git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", spec)
        entries = [entry for entry in status.decode("utf-8", "replace").split("\0") if len(entry) > 3 and entry[2] == " "]

        def rel_of(path: str) -> str:
            return path[len(prefix) + 1:] if prefix and path.startswith(prefix + "/") else path

        rel = [rel_of(p) for p in sorted({entry[3:] for entry in entries})]
        untracked = tuple(sorted(rel_of(entry[3:]) for entry in entries if entry.startswith("??")))
        if not rel:
            out.append(plan)
            continue
        labels = dict(plan.labels)
        if labels.get(REVISION_LABEL):
            labels[REVISION_LABEL] += "-dirty"
        out.append(dataclasses.replace(plan, labels=labels, dirty=tuple(rel), untracked=untracked))
    return out


def listing(paths: Sequence[str], limit: int = 5) -> str:
    """`a, b and 3 more`: paths named in a message, the first few of them."""
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _dirty_list(paths: Sequence[str], limit: int = 5) -> str:
    return listing(paths, limit) + (" differs" if len(paths) == 1 else " differ")

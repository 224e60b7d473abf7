"""An EditPlan delivered: written atomically, the committed render root re-rendered so the pull
request passes `render --check`, then, as asked, committed on a branch, pushed to origin and proposed
as a pull request. All or nothing for the working tree. Nothing here prints.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from gitops_ml.adapters import git as gitx
from gitops_ml.adapters.github import GitHubClient, GitHubSettings, PullRequest
from gitops_ml.adapters.gitwrite import BranchCommit, GitWriter
from gitops_ml.atomic import write_atomic
from gitops_ml.edits.plans import EditPlan
from gitops_ml.errors import EditError, GitopsMlError, LoadError, ValidationError
from gitops_ml.render import service as render_service
from gitops_ml.repo.editing import (
    DirectorySnapshot,
    FileEdit,
    undo_file_edits,
    write_file_edits,
)
from gitops_ml.repo.handle import Repository
from gitops_ml.types import DEPLOYMENTS_DIR, MODELS_DIR, REPOSITORY_FILE

SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Delivery:
    """How far an edit goes: the working tree only, a branch, a push, a pull request."""

    branch: str | None = None
    push: bool = False
    pr: bool = False

    def normalized(self, plan: EditPlan) -> "Delivery":
        # a pull request needs a pushed branch; a push needs a branch
        push = self.push or self.pr
        branch = self.branch or (plan.default_branch if push else None)
        return Delivery(branch, push, self.pr)


@dataclass
class EditResult:
    plan: EditPlan
    written: list[str] = field(default_factory=list)
    commit: BranchCommit | None = None
    pushed: bool = False
    pull_request: PullRequest | None = None
    pr_created: bool = False


# --- delivering -------------------------------------------------------------------------------------


BodyMaker = Callable[[EditPlan, Repository, str], str]
ClientMaker = Callable[[GitHubSettings], GitHubClient]


@dataclass(frozen=True)
class Ready:
    """What preflight found: the repository, and the commit the edit's branch has on origin
    (None: origin has no such branch, or it was not asked because nothing is pushed)."""

    writer: GitWriter | None
    remote_tip: str | None = None


def preflight(plan: EditPlan, repository: Repository, delivery: Delivery, github: GitHubSettings | None) -> Ready:
    """Refuse, before anything is written, what would fail half-way."""
    paths = [f.path for f in plan.files]
    try:
        writer = GitWriter(repository.checkout())
    except GitopsMlError:
        if delivery.branch:
            raise EditError(f"{repository.root} is not in a git repository; --branch needs one") from None
        return Ready(None)
    dirty = writer.dirty(paths)
    if dirty:
        raise EditError(f"uncommitted changes in {', '.join(dirty)}; the edit would overwrite them",
                        hint="commit or stash them first")
    if delivery.branch:
        writer.check_branch_name(delivery.branch)
        if not writer.has_commits():
            raise EditError("the repository has no commits yet; commit first")
        current = writer.current_branch()
        if current is None:
            raise EditError("HEAD is detached; --branch needs a branch to start from",
                            hint="check out the branch the pull request should target, e.g. `git switch main`")
        if current == delivery.branch:
            raise EditError(f"already on {delivery.branch!r}; run the edit from the branch it should target",
                            hint="e.g. `git switch main`, then run it again: the branch is updated, not duplicated")
        _refuse_stray_render_inputs(plan, repository, writer)
    if delivery.push and writer.remote_url() is None:
        raise EditError("there is no 'origin' remote to push to", hint="add one with `git remote add origin URL`")
    if delivery.pr and github is None:
        raise EditError("--pr needs GitHub settings")  # the CLI always passes them; a guard for library use
    remote_tip = None
    if delivery.branch:
        # the edit replaces what an earlier run committed on its branch, and nothing else
        local_tip = writer.branch_sha(delivery.branch)
        if local_tip is not None:
            _refuse_foreign_commits(writer, delivery.branch, local_tip, on_origin=False)
        if delivery.push:
            remote_tip = writer.fetch_branch(delivery.branch)
            if remote_tip is not None:
                _refuse_foreign_commits(writer, delivery.branch, remote_tip, on_origin=True)
    return Ready(writer, remote_tip)


# the trailer that marks the commits an edit makes: only those are ever replaced by a later run
TRAILER = "Gitops-ml-edit"
# what commits made before the trailer existed end with
_LEGACY_MARK = re.compile(r"\n\nMade by `gitops-ml (bump|promote|rollback)`\.\s*$")


def _refuse_foreign_commits(writer: GitWriter, branch: str, tip: str, *, on_origin: bool) -> None:
    """Refuse to move a branch that holds commits gitops-ml did not make (a reviewer's fix-up,
    someone's own work on a branch of the same name): moving it would discard them."""
    commits = writer.commits_between("HEAD", tip, TRAILER)
    foreign = [c for c in commits if not c.trailers and not _LEGACY_MARK.search(c.message)]
    if not foreign:
        return
    where = f"branch {branch!r} on origin" if on_origin else f"local branch {branch!r}"
    listed = "; ".join(f"{c.sha[:12]} {c.subject} ({c.author})" for c in foreign[:3]) + ("; ..." if len(foreign) > 3 else "")
    count = f"{len(foreign)} commit{'s' if len(foreign) > 1 else ''}"
    delete = f"git push origin --delete {branch}" if on_origin else f"git branch -D {branch}"
    raise EditError(
        f"{where} has {count} that gitops-ml did not make: {listed}; running the edit again would discard them",
        hint=f"keep that work: merge the pull request with it, or move it elsewhere; to start over, delete the branch "
             f"(`{delete}`) or pass another --branch NAME",
    )


def _refuse_stray_render_inputs(plan: EditPlan, repository: Repository, writer: GitWriter) -> None:
    """The edit re-renders the render root from the working tree and commits it: an uncommitted
    change to anything render reads, outside what the edit commits, would leak into that commit
    as rendered output whose source is not in it (and the branch would fail `render --check`)."""
    render_root = committed_render_root(repository)
    if render_root is None:
        return
    dirty = writer.dirty([REPOSITORY_FILE, MODELS_DIR, DEPLOYMENTS_DIR, render_root])
    stray = [path for path in dirty if not any(_within(path, p) for p in plan.commit_paths)]
    if stray:
        names = ", ".join(stray[:5]) + (f" and {len(stray) - 5} more" if len(stray) > 5 else "")
        raise EditError(f"uncommitted changes in {names}: the edit re-renders {render_root}/ from the working tree, so its commit would carry them",
                        hint="commit or stash them first (`git stash push --include-untracked`), then run the edit again")


def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def deliver(
    plan: EditPlan,
    repository: Repository,
    delivery: Delivery,
    *,
    github: GitHubSettings | None = None,
    make_body: BodyMaker | None = None,
    make_client: ClientMaker = GitHubClient,
) -> EditResult:
    """Write the plan, then commit, push and open/update the pull request as delivery asks.

    All or nothing for the working tree: when any step fails (an unexpected exception too), every
    file the edit wrote gets its old content back and the user stays on the branch they started
    from; a commit already made is kept on its branch, so running the same command again finishes
    the job. Only when every step succeeded is the edit's branch checked out."""
    delivery = delivery.normalized(plan)
    ready = preflight(plan, repository, delivery, github)
    writer = ready.writer
    result = EditResult(plan)
    base_before = writer.repo.git.rev_parse("HEAD") if writer is not None and writer.has_commits() else ""
    undo = _Undo(repository, plan)
    journal = Journal.of(repository)
    try:
        if journal is not None:
            # a clean render root can be restored from HEAD should this edit be killed half-way
            journal.record(plan, render_clean=writer is not None and not writer.dirty([repository.render_root]))
        result.written = write_file_edits(repository.root, plan.files)
        repository.refresh()
        rendered = rerender(repository, plan)
        result.written += rendered
        if journal is not None:
            journal.clear()  # the working tree is consistent again: edited and re-rendered
        if delivery.branch is None or writer is None:
            return result
        commit_paths = list(plan.commit_paths) + ([repository.render_root] if rendered else [])
        reuse = [ready.remote_tip] if ready.remote_tip else []
        result.commit = writer.commit_on_branch(delivery.branch, commit_paths, commit_message(plan), reuse=reuse)
        if delivery.push:
            writer.push(delivery.branch, expected=ready.remote_tip)
            result.pushed = True
        if delivery.pr and github is not None:
            body = make_body(plan, repository, base_before) if make_body is not None else plan.title
            with make_client(github) as client:
                result.pull_request, result.pr_created = client.open_or_update(
                    head=delivery.branch, base=result.commit.base_branch, title=plan.title, body=body
                )
        writer.switch_to(delivery.branch, commit_paths)
    except BaseException as exc:
        undo.restore(exc)
        if journal is not None:
            journal.clear()
        if isinstance(exc, GitopsMlError) and result.commit is not None:
            exc.hint = "; ".join(h for h in (exc.hint, _kept_hint(result, delivery)) if h)
        raise
    return result


def _kept_hint(result: EditResult, delivery: Delivery) -> str:
    """Where a failure after the commit left the user, and what finishes the job."""
    commit = result.commit
    assert commit is not None
    kept = f"branch {commit.branch!r} (pushed to origin)" if result.pushed else f"the local branch {commit.branch!r}"
    if delivery.push and not result.pushed:
        finish = "run the same command again to push it"
    elif delivery.pr and result.pull_request is None:
        finish = "run the same command again to open the pull request"
    else:
        finish = f"`git switch {commit.branch}` checks it out"
    return f"you are still on {commit.base_branch!r} with your working tree as it was; the commit is kept on {kept}; {finish}"


class _Undo:
    """What an edit may write (its files and, when the render is committed, the render root),
    as it was before; `restore` puts it back."""

    def __init__(self, repository: Repository, plan: EditPlan) -> None:
        self.repository = repository
        self.plan = plan
        self.render = DirectorySnapshot.take(repository.render_dir) if repository.renders_committed else None

    def restore(self, cause: BaseException) -> None:
        try:
            undo_file_edits(self.repository.root, self.plan.files)
            if self.render is not None:
                self.render.restore()
        except Exception as exc:  # noqa: BLE001 - the first failure is the one to report
            note = f"the edit could not be undone ({exc}); restore the files with `git restore` or `git checkout`"
            if isinstance(cause, GitopsMlError):
                cause.hint = "; ".join(h for h in (cause.hint, note) if h)
            elif callable(add_note := getattr(cause, "add_note", None)):  # Python 3.11+
                add_note(note)


def committed_render_root(repository: Repository) -> str | None:
    """The render root when this repository commits its render (an ownership file is there),
    else None: then an edit has no render to keep current."""
    return repository.render_root if repository.renders_committed else None


def rerender(repository: Repository, plan: EditPlan) -> list[str]:
    """Re-render a repository that commits its render, so the edit's pull request passes
    `render --check`; the written paths, relative to root."""
    render_root = committed_render_root(repository)
    if render_root is None:
        return []  # this repository does not commit a render: nothing to keep current
    try:
        # through the module: tests replace render_repository to make the render fail
        result = render_service.render_repository(render_service.RenderRequest(repository))
    except GitopsMlError as exc:  # `deliver` undoes the edit
        exc.hint = "; ".join(h for h in (exc.hint, _undone_hint(exc)) if h)
        raise
    written = result.written
    if written is None:
        return []
    return [f"{render_root}/{p}" for p in [*written.written, *written.removed]]


def _undone_hint(exc: GitopsMlError) -> str:
    """What to fix, named by the kind of problem the re-render ran into."""
    if isinstance(exc, ValidationError):
        return "the edit was undone: the repository does not validate with it; fix the errors above (`gitops-ml validate`) and run it again"
    if isinstance(exc, LoadError):
        return "the edit was undone: fix the file that cannot be read and run it again"
    return "the edit was undone: fix the render error and run it again"


def commit_message(plan: EditPlan) -> str:
    lines = [plan.title, ""]
    if plan.old_version is not None:
        where = f" in {plan.environment}" if plan.environment else ""
        lines.append(f"{plan.model}{where}: {plan.old_version} -> {plan.new_version}")
    lines.extend(plan.notes)
    lines.append("")
    lines.append(f"Made by `gitops-ml {plan.kind.value}`; running it again replaces this commit.")
    lines.append("")
    subject = " ".join(p for p in (plan.kind.value, plan.model, plan.environment) if p)
    lines.append(f"{TRAILER}: {subject}")
    return "\n".join(lines).strip() + "\n"


class Journal:
    """What an edit is writing, kept in .git until its files are written and re-rendered: when
    gitops-ml is killed in between (the files edited, the render root half re-rendered), the next
    edit recognises its own interrupted work and undoes it (the files it edited get their text
    back, a render root that was clean is restored from HEAD) instead of refusing it as someone's
    uncommitted changes or bumping twice."""

    NAME = "edit-journal.json"

    def __init__(self, repository: Repository, path: Path) -> None:
        self.repository = repository
        self.path = path

    @classmethod
    def of(cls, repository: Repository) -> "Journal | None":
        """The repository's journal; None outside git, where no edit is refused as uncommitted."""
        try:
            checkout = repository.checkout()
        except GitopsMlError:
            return None
        return cls(repository, gitx.private_dir(checkout.repo) / (checkout.prefix.replace("/", "%") + cls.NAME))

    def record(self, plan: EditPlan, *, render_clean: bool) -> None:
        entries = [{"path": f.path, "before": f.before, "after": f.after, "created": f.created} for f in plan.files if f.changed]
        write_atomic(self.path, json.dumps({"edit": plan.title, "files": entries, "renderClean": render_clean}, indent=1))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def undo_interrupted(self) -> list[str]:
        """Put back the files of an interrupted edit that are still as it left them, re-render the
        render root from them, and forget the journal; the repaired paths (none when there was
        nothing to repair). Files changed since are left alone: then the journal is only dropped."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            entries = [(str(e["path"]), str(e["before"]), str(e["after"]), bool(e.get("created"))) for e in doc["files"]]
            render_clean = bool(doc["renderClean"])
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError):
            self.clear()  # a journal cut short was written before any file: nothing to repair
            return []
        root = self.repository.root
        current = {path: _text_or_none(root / path) for path, _, _, _ in entries}
        if any(current[path] not in (after, None if created else after) for path, _, after, created in entries):
            self.clear()  # someone changed those files since: they are the user's now
            return []
        undo_file_edits(root, [FileEdit(path, before, after, created) for path, before, after, created in entries])
        self.repository.refresh()
        repaired = [path for path, _, _, _ in entries]
        if render_clean and self.repository.renders_committed:
            # the render root was what HEAD has before the edit began: that is its state again
            GitWriter(self.repository.checkout()).restore_from_head(self.repository.render_root)
            repaired.append(f"{self.repository.render_root}/")
        self.clear()
        return repaired


def _text_or_none(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None

"""`diff --base REF`: render REF and the working tree in memory and compare them per environment
and model, as text for terminals or Markdown for a pull-request body (the registry's PRs use it).

Nothing is written to disk; the base is read from git through a CommitTree.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace

from gitops_ml.adapters.git import CommitTree
from gitops_ml.errors import GitopsMlError, Location, ValidationError
from gitops_ml.render.files import Rendered, render_plan
from gitops_ml.render.planning import Endpoint, Plan, make_plan, resolve_versions
from gitops_ml.render.service import plan_repository
from gitops_ml.repo.handle import Repository
from gitops_ml.repo.loading import load_tree
from gitops_ml.repo.sources import FileSource
from gitops_ml.types import Finding
from gitops_ml.validate.rules import validate_tree
from gitops_ml.validate.specs import Specs

MAX_LINES_PER_MODEL = 400  # one model's diff in a PR comment; more is for `gitops-ml diff` locally
# GitHub refuses a comment or PR body over 65,536 characters (422); the margin leaves room for the
# marker that pr-comment adds and for the header a pull request body puts around the diff
MAX_MARKDOWN_CHARS = 60_000


@dataclass
class FileDiff:
    path: str  # relative to the render root
    status: str  # added, removed, changed
    lines: list[str]


@dataclass
class EndpointChange:
    """How one (environment, model) changes; environment "" and model "" group shared files."""

    environment: str
    model: str
    status: str  # added, removed, changed
    image_before: str = ""
    image_after: str = ""
    replicas_before: str = ""
    replicas_after: str = ""
    files: list[FileDiff] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.environment}/{self.model}" if self.model else (self.environment or "shared")


@dataclass
class DiffResult:
    base: str
    render_root: str
    changes: list[EndpointChange] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changes


def _replicas(ep: Endpoint | None) -> str:
    if ep is None:
        return ""
    auto = ep.deployment.autoscaling
    return f"{auto.min_replicas}-{auto.max_replicas} (autoscaled)" if auto.enabled else str(ep.deployment.replicas)


def _plan_of_commit(repository: Repository, source: CommitTree) -> Plan:
    specs = load_and_validate(source)
    versions = resolve_versions(repository, specs, specs.deployments, source=source)
    return make_plan(specs, versions)


def load_and_validate(source: FileSource) -> Specs:
    report = validate_tree(load_tree(source))
    if report.specs is None:
        errors = [f for f in report.findings if f.severity == "error"]
        raise ValidationError(errors, f"the repository at {source.label} does not validate")
    return report.specs


def _file_diff(path: str, before: bytes | None, after: bytes | None) -> FileDiff | None:
    if before == after:
        return None
    a = before.decode().splitlines(keepends=True) if before is not None else []
    b = after.decode().splitlines(keepends=True) if after is not None else []
    lines = list(difflib.unified_diff(a, b, f"a/{path}" if before is not None else "/dev/null", f"b/{path}" if after is not None else "/dev/null", n=3))
    status = "added" if before is None else "removed" if after is None else "changed"
    return FileDiff(path, status, [line if line.endswith("\n") else line + "\n" for line in lines])


def compare_renders(base_label: str, render_root: str, old: tuple[Plan, Rendered], new: tuple[Plan, Rendered]) -> DiffResult:
    (old_plan, old_files), (new_plan, new_files) = old, new
    result = DiffResult(base_label, render_root)
    old_eps = {(str(e.environment.name), str(e.model)): e for e in old_plan.endpoints}
    new_eps = {(str(e.environment.name), str(e.model)): e for e in new_plan.endpoints}
    owner: dict[str, tuple[str, str]] = {}
    for rendered in (old_files, new_files):
        for unit, paths in rendered.units.items():
            kind, _, rest = unit.partition("/")
            key = tuple(rest.split("/", 1)) if kind == "endpoint" else ("", "")
            for p in paths:
                owner[p] = key  # type: ignore[assignment]
    groups: dict[tuple[str, str], EndpointChange] = {}
    for path in sorted(set(old_files.files) | set(new_files.files)):
        diff = _file_diff(path, old_files.files.get(path), new_files.files.get(path))
        if diff is None:
            continue
        env, model = owner[path]
        change = groups.get((env, model))
        if change is None:
            before, after = old_eps.get((env, model)), new_eps.get((env, model))
            status = "added" if before is None and model else "removed" if after is None and model else "changed"
            change = EndpointChange(
                env, model, status,
                before.version.image if before else "", after.version.image if after else "",
                _replicas(before), _replicas(after),
            )
            groups[(env, model)] = change
        change.files.append(diff)
    result.changes = [groups[k] for k in sorted(groups, key=lambda k: (k == ("", ""), k))]
    return result


def _at_revision(location: Location, base_ref: str) -> Location:
    return replace(location, path=f"{base_ref}:{location.path}") if location.path else location


def _locate_at_base(exc: GitopsMlError, base_ref: str) -> None:
    """Errors of the base side name the revision (`REF:path:line:col`, git's own spelling), so that
    a file broken in history is not taken for the working-tree file of the same name."""
    if isinstance(exc, ValidationError):
        exc.findings = [replace(f, location=_at_revision(f.location, base_ref)) if isinstance(f, Finding) else f for f in exc.findings]
    if exc.location is not None and exc.location.path:
        exc.location = _at_revision(exc.location, base_ref)
    elif not (isinstance(exc, ValidationError) and exc.findings):
        exc.message = f"{exc.message} (at base {base_ref})"
        exc.args = (exc.message,)


def render_diff(repository: Repository, base_ref: str) -> DiffResult:
    """Rendered manifests of base_ref against those of the working tree."""
    source = repository.at(base_ref)
    try:
        old_plan = _plan_of_commit(repository, source)
    except GitopsMlError as exc:
        _locate_at_base(exc, base_ref)
        raise
    new_plan = plan_repository(repository)
    return compare_renders(base_ref, new_plan.repository.render_root, (old_plan, render_plan(old_plan)), (new_plan, render_plan(new_plan)))


def format_text(result: DiffResult) -> str:
    if result.empty:
        return f"no changes to the rendered manifests since {result.base}\n"
    out = []
    for change in result.changes:
        head = f"=== {change.title}: {change.status}"
        if change.image_before != change.image_after:
            head += f"; image {change.image_before or '-'} -> {change.image_after or '-'}"
        if change.replicas_before != change.replicas_after:
            head += f"; replicas {change.replicas_before or '-'} -> {change.replicas_after or '-'}"
        out.append(head + "\n")
        for f in change.files:
            out.extend(f.lines)
    return "".join(out)


def _size(text: str) -> int:
    # UTF-8 bytes are never fewer than characters, so this bound holds however GitHub counts
    return len(text.encode("utf-8"))


def _table_row(c: EndpointChange) -> str:
    image = _arrow(c.image_before.rsplit(":", 1)[-1] if c.image_before else "", c.image_after.rsplit(":", 1)[-1] if c.image_after else "")
    return f"| {c.environment} | {c.model} | {c.status} | {image} | {_arrow(c.replicas_before, c.replicas_after)} |"


def _section(c: EndpointChange, base: str, room: int) -> str | None:
    """One collapsed section, its diff cut to MAX_LINES_PER_MODEL lines and to `room` bytes;
    None when not even its frame and a few lines fit."""
    body = [line.rstrip("\n").replace("```", "`\u200b``") for f in c.files for line in f.lines]
    head = f"<details><summary><code>{c.title}</code>: {c.status}, {len(c.files)} file(s)</summary>\n\n```diff\n"
    tail = "```\n\n</details>\n\n"
    more = f"... {len(body)} more line(s); run `gitops-ml diff --base {base}`\n"  # longest such note
    used = _size(head) + _size(tail)
    shown: list[str] = []
    for line in body[:MAX_LINES_PER_MODEL]:
        cost = _size(line) + 1
        if used + cost + (_size(more) if len(shown) + 1 < len(body) else 0) > room:
            break
        shown.append(line)
        used += cost
    if len(shown) < len(body):
        if len(shown) < min(len(body), 5) or used + _size(more) > room:
            return None
        shown.append(f"... {len(body) - len(shown)} more line(s); run `gitops-ml diff --base {base}`")
    return head + "".join(line + "\n" for line in shown) + tail


def format_markdown(result: DiffResult) -> str:
    """A PR-comment body: a summary table, then one collapsed section per model, all within
    MAX_MARKDOWN_CHARS; what does not fit is counted in a closing note."""
    if result.empty:
        return f"**gitops-ml**: no changes to the rendered manifests since `{result.base}`.\n"
    base = result.base
    changes = result.changes
    omitted_note = f"_{len(changes)} more sections omitted; run `gitops-ml diff --base {base}` locally._\n"
    out = (
        f"### Rendered manifest changes since `{base}`\n\n"
        "| Environment | Model | Change | Image | Replicas |\n"
        "| --- | --- | --- | --- | --- |\n"
    )
    rows = [_table_row(c) for c in changes if c.model]
    # the table may take up to half of the room; the sections get the rest
    used, listed = _size(out), 0
    for row in rows:
        if used + _size(row) + 1 > MAX_MARKDOWN_CHARS // 2:
            break
        out += row + "\n"
        used += _size(row) + 1
        listed += 1
    out += "\n"
    if listed < len(rows):
        left = len(rows) - listed
        out += f"_… and {left} more changed model{'s' if left != 1 else ''} not listed._\n\n"
    shown = 0
    for c in changes:
        room = MAX_MARKDOWN_CHARS - _size(out) - _size(omitted_note)
        section = _section(c, base, room)
        if section is None:
            break
        out += section
        shown += 1
    if shown < len(changes):
        out += f"_{len(changes) - shown} more sections omitted; run `gitops-ml diff --base {base}` locally._\n"
    return out


def _arrow(before: str, after: str) -> str:
    if before == after:
        return f"`{before}`" if before else ""
    return f"`{before or '-'}` → `{after or '-'}`"

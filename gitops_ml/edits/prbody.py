"""Markdown bodies of the pull requests that edits open: version change, artifact and metrics delta,
schema diff and the rendered-manifest diff.

Pure text from an EditPlan, except `render_diff_section`, which asks the render stage for the
rendered-manifest diff and says why when it cannot. Nothing here prints.
"""

from __future__ import annotations

import math
from typing import Any

from gitops_ml.edits.plans import Change, EditKind, EditPlan
from gitops_ml.render import diff as manifest_diff
from gitops_ml.repo.handle import Repository

MARKER = "<!-- gitops-ml:edit -->"
# GitHub refuses bodies over 65,536 characters; the rendered diff is cut to fit
MAX_BODY = 65_000



def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _delta(change: Change) -> str:
    old, new = change.old, change.new
    if isinstance(old, (int, float)) and isinstance(new, (int, float)) and not isinstance(old, bool):
        diff = new - old
        if not math.isfinite(diff):
            return ""
        return "±0" if diff == 0 else f"{diff:+.4g}"
    if old is None:
        return "new"
    if new is None:
        return "removed"
    return ""


def _code(value: Any) -> str:
    return f"`{value}`" if value not in (None, "") else "—"


def render_body(plan: EditPlan, render_diff: str) -> str:
    """The whole pull request body."""
    lines = [MARKER]
    where = f" in **{plan.environment}**" if plan.environment else ""
    verb = {EditKind.BUMP: "Retrained", EditKind.PROMOTE: "Promotion", EditKind.ROLLBACK: "Rollback"}[plan.kind]
    lines.append(f"### {verb}: `{plan.model}`{where} {_code(plan.old_version)} → {_code(plan.new_version)}")
    lines.append("")
    for note in plan.notes:
        lines.append(f"> **Note:** {note}")
    if plan.notes:
        lines.append("")
    if plan.artifact:
        lines += ["#### Artifact", "", "| | before | after |", "| --- | --- | --- |"]
        for change in plan.artifact:
            lines.append(f"| {change.name} | {_code(change.old)} | {_code(change.new)} |")
        lines.append("")
    if plan.metrics:
        lines += ["#### Metrics", "", "| metric | before | after | delta |", "| --- | ---: | ---: | ---: |"]
        for change in plan.metrics:
            lines.append(f"| {change.name} | {_fmt(change.old)} | {_fmt(change.new)} | {_delta(change)} |")
        lines.append("")
    if plan.kind is EditKind.BUMP:
        lines += ["#### Input schema", ""]
        if plan.schema_breaks:
            lines.append("Incompatible changes (old requests may fail):")
            lines += [f"- {reason}" for reason in plan.schema_breaks]
            lines.append("")
        if plan.schema_diff:
            lines += ["<details><summary>schema diff</summary>", "", "```diff", plan.schema_diff.rstrip("\n"), "```", "", "</details>"]
        else:
            lines.append("Unchanged.")
        lines.append("")
    lines += ["#### Rendered manifests", ""]
    head = "\n".join(lines)
    footer = f"\n\n---\nOpened by `gitops-ml {plan.kind.value}`; running it again with the same inputs updates this pull request."
    room = MAX_BODY - len(head) - len(footer) - 200
    diff = render_diff.strip() or "No change to the rendered manifests."
    if len(diff) > room:
        diff = diff[: max(0, room)].rstrip() + "\n\n… (cut: run `gitops-ml diff --base <base branch>` for the whole diff)"
        if diff.count("```") % 2:
            diff += "\n```"
    return head + "\n" + diff + footer + "\n"


def render_diff_section(repository: Repository, base_ref: str) -> str:
    """The rendered-manifest diff between base_ref and the working tree, or why it is missing."""
    if not base_ref:
        return "_(render diff unavailable: no base commit)_"
    try:
        return manifest_diff.format_markdown(manifest_diff.render_diff(repository, base_ref))
    except Exception as exc:  # noqa: BLE001 - the PR is still worth opening without the diff
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return f"_(render diff unavailable: {message})_"


def make_body(plan: EditPlan, repository: Repository, base_ref: str) -> str:
    """The BodyMaker that `edits.deliver` calls once the files are written."""
    return render_body(plan, render_diff_section(repository, base_ref))

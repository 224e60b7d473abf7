"""Markdown bodies of the pull requests that edits open: version change, artifact and metrics delta,
schema diff and the rendered-manifest diff.

Pure text from an EditPlan, except `render_diff_section`, which asks the render stage for the
rendered-manifest diff and says why when it cannot. Nothing here prints.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

from gitops_ml.adapters.github import fit_comment
from gitops_ml.edits.plans import Change, EditKind, EditPlan
from gitops_ml.render import diff as manifest_diff
from gitops_ml.repo.handle import Repository

MARKER = "<!-- gitops-ml:edit -->"
# GitHub refuses bodies over 65,536 characters; the rendered diff is cut to fit
MAX_BODY = 65_000
# shares of the body for the sections that may be long; the rendered diff gets the rest
MAX_EVIDENCE = 24_000
MAX_PREDICTIONS = 16_000



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


def _fit(section: str, limit: int, note: str) -> str:
    return fit_comment(section, limit, note)[0].rstrip("\n") if section.strip() else ""


def render_body(plan: EditPlan, render_diff: str, *, evidence: str = "", predictions: str = "") -> str:
    """The whole pull request body. `evidence` (why the edit was made: the monitor report that
    started a retraining) comes first, `predictions` (the new version's answers on the committed
    sample next to the old one's) after the schema; each is cut to its share of GitHub's limit."""
    lines = [MARKER]
    where = f" in **{plan.environment}**" if plan.environment else ""
    verb = {EditKind.BUMP: "Retrained", EditKind.PROMOTE: "Promotion", EditKind.ROLLBACK: "Rollback"}[plan.kind]
    lines.append(f"### {verb}: `{plan.model}`{where} {_code(plan.old_version)} → {_code(plan.new_version)}")
    lines.append("")
    for note in plan.notes:
        lines.append(f"> **Note:** {note}")
    if plan.notes:
        lines.append("")
    if evidence.strip():
        lines += [_fit(evidence, MAX_EVIDENCE, "_… evidence cut to fit the pull request; the issue has all of it._"), ""]
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
    if predictions.strip():
        lines += [_fit(predictions, MAX_PREDICTIONS, "_… cut to fit the pull request._"), ""]
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


@dataclass(frozen=True)
class Evidence:
    """Why an edit was made: a GitHub issue `gitops-ml alert` filed, or a markdown file."""

    title: str  # "#12 gitops-ml monitor: iris in prod crossed a threshold", or a file name
    body: str  # markdown
    reference: str = ""  # "#12": GitHub links it, and lists the pull request on the issue


_HIDDEN = re.compile(r"^<!--.*-->\s*$")
_ALERT_FOOTER = "\n---\nUpdated by `gitops-ml alert`"


def evidence_section(items: Sequence[Evidence]) -> str:
    """The evidence that started a retraining, each item folded open under its title."""
    if not items:
        return ""
    refs = [item.reference for item in items if item.reference]
    lines = ["#### Evidence", ""]
    lines.append(f"This retraining was started by {', '.join(refs)}." if refs else "Why this retraining was made:")
    share = max(2_000, MAX_EVIDENCE // len(items) - 200)
    for item in items:
        body = item.body.split(_ALERT_FOOTER, 1)[0]  # the issue's own bookkeeping, not evidence
        body = "\n".join(line for line in body.splitlines() if not _HIDDEN.match(line)).strip()
        body = fit_comment(body, share, "_… cut; the issue has the whole report._")[0]
        lines += ["", f"<details open><summary>{html.escape(item.title)}</summary>", "", body, "", "</details>"]
    return "\n".join(lines) + "\n"


def render_diff_section(repository: Repository, base_ref: str) -> str:
    """The rendered-manifest diff between base_ref and the working tree, or why it is missing."""
    if not base_ref:
        return "_(render diff unavailable: no base commit)_"
    try:
        return manifest_diff.format_markdown(manifest_diff.render_diff(repository, base_ref))
    except Exception as exc:  # noqa: BLE001 - the PR is still worth opening without the diff
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return f"_(render diff unavailable: {message})_"


def make_body(plan: EditPlan, repository: Repository, base_ref: str, *, evidence: str = "", predictions: str = "") -> str:
    """The BodyMaker that `edits.deliver` calls once the files are written (evidence and
    predictions bound with functools.partial)."""
    return render_body(plan, render_diff_section(repository, base_ref), evidence=evidence, predictions=predictions)

"""`gitops-ml validate`: schema and cross-file checks, and version rules against --base."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from gitops_ml.adapters import git as gitx
from gitops_ml.cli._common import handle_errors, repo_argument, report_findings
from gitops_ml.errors import UsageError
from gitops_ml.loading import load_tree
from gitops_ml.sources import WorkTree
from gitops_ml.validation import Report, older_pins, validate_tree, version_findings


@dataclass(frozen=True)
class ValidateRequest:
    repo: Path
    base: str | None
    fmt: str


def execute(request: ValidateRequest) -> Report:
    if not request.repo.is_dir():
        raise UsageError(f"{request.repo} is not a directory")
    tree = load_tree(WorkTree(request.repo))
    report = validate_tree(tree)
    specs = report.specs
    if specs is not None and older_pins(specs):
        from gitops_ml.versions import missing_pins  # noqa: PLC0415 - GitPython only when a pin names an older version

        report.findings = sorted(set(report.findings) | set(missing_pins(request.repo, tree, specs)))
    if request.base:
        base = gitx.commit_tree(request.repo, request.base)
        report.findings = sorted(set(report.findings) | set(version_findings(tree, report, base, request.base)))
    return report


@click.command("validate")
@repo_argument
@click.option("--base", metavar="REF", help="Also check version rules against this git revision (e.g. origin/main).")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text", show_default=True,
    help="text for people, json for tools, github for workflow annotations on the pull request.",
)
def command(repo: Path, base: str | None, fmt: str) -> None:
    """Check every file of REPO (default: .) against its schema and the cross-file rules.

    Exits 0 when clean, 1 when there are findings; every finding is printed as path:line:col.
    """
    with handle_errors():
        report = execute(ValidateRequest(repo, base, fmt))
        prefix = ""
        if fmt == "github":
            try:
                r = gitx.open_repo(repo)
                prefix = gitx.repo_prefix(r, repo)
                prefix = prefix + "/" if prefix else ""
            except Exception:  # noqa: BLE001 - annotations without a git repo use repo-relative paths
                prefix = ""
        report_findings(report.findings, fmt, files=report.files, prefix=prefix)
        if not report.ok:
            click.get_current_context().exit(1)

"""`gitops-ml validate`: schema and cross-file checks, and version rules against --base."""

from __future__ import annotations

from dataclasses import dataclass

import click

from gitops_ml.cli._common import handle_errors, report_findings, repository_options, require_repository
from gitops_ml.errors import UsageError
from gitops_ml.repo.handle import Repository
from gitops_ml.validate.service import check_repository
from gitops_ml.validate.specs import Report


@dataclass(frozen=True)
class ValidateRequest:
    repo: Repository
    base: str | None
    fmt: str


def execute(request: ValidateRequest) -> Report:
    if not request.repo.root.is_dir():
        raise UsageError(f"{request.repo.root} is not a directory")
    require_repository(request.repo)
    return check_repository(request.repo, request.base)


@click.command("validate")
@repository_options(positional=True)
@click.option("--base", metavar="REF", help="Also check version rules against this git revision (e.g. origin/main).")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text", show_default=True,
    help="text for people, json for tools, github for workflow annotations on the pull request.",
)
def command(repo: Repository, base: str | None, fmt: str) -> None:
    """Check every file of REPO (default: .) against its schema and the cross-file rules.

    Exits 0 when clean, 1 when there are findings; every finding is printed as path:line:col.
    """
    with handle_errors():
        report = execute(ValidateRequest(repo, base, fmt))
        prefix = ""
        if fmt == "github":
            try:
                prefix = repo.checkout().prefix
                prefix = prefix + "/" if prefix else ""
            except Exception:  # noqa: BLE001 - annotations without a git repo use repo-relative paths
                prefix = ""
        report_findings(report.findings, fmt, files=report.files, prefix=prefix)
        if not report.ok:
            click.get_current_context().exit(1)

"""Options and reporting shared by the edit verbs (bump, promote, rollback): --branch, --push, --pr."""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

import click

from gitops_ml.adapters.github import GitHubSettings, settings_from_env
from gitops_ml.adapters.gitwrite import GitWriter
from gitops_ml.cli._common import echo_err
from gitops_ml.cli._registry import print_strict_json
from gitops_ml.edits.delivery import Delivery, EditResult, Journal, deliver
from gitops_ml.edits.plans import EditPlan
from gitops_ml.edits.prbody import make_body
from gitops_ml.errors import GitopsMlError
from gitops_ml.repo.handle import Repository


def delivery_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format.")(func)
    func = click.option("--pr", is_flag=True, help="Open (or update) a GitHub pull request; needs GITHUB_TOKEN; implies --push.")(func)
    func = click.option("--push", is_flag=True, help="Push the branch to the `origin` remote; implies a branch.")(func)
    func = click.option("--branch", metavar="NAME", help="Commit the edit on this branch (created or updated) and check it out.")(func)
    return func


def finish_interrupted(repo: Repository) -> None:
    """Before planning an edit: repair what an edit killed half-way left behind (its files edited,
    the render root half re-rendered), so that it is neither refused as uncommitted work nor
    edited twice."""
    journal = Journal.of(repo)
    repaired = journal.undo_interrupted() if journal is not None else []
    if repaired:
        echo_err(f"note: an earlier edit was interrupted; undid it ({', '.join(repaired[:3])}{' ...' if len(repaired) > 3 else ''}) before this one")


def github_settings(repo: Repository) -> GitHubSettings:
    """GitHub settings from the environment, the repository named by `origin` when GITHUB_REPOSITORY is not set."""
    origin = None
    try:
        origin = GitWriter(repo.checkout()).remote_url()
    except GitopsMlError:
        origin = None
    return settings_from_env(os.environ, origin)


def run_edit(repo: Repository, plan: EditPlan, branch: str | None, push: bool, pr: bool, *, evidence: str = "", predictions: str = "") -> EditResult:
    """Check the GitHub settings (before anything is written), then deliver the plan; `evidence` and
    `predictions` are sections of the pull request body."""
    settings = github_settings(repo) if pr else None
    body = functools.partial(make_body, evidence=evidence, predictions=predictions)
    return deliver(plan, repo, Delivery(branch, push, pr), github=settings, make_body=body)


def report(result: EditResult, fmt: str, extra: dict[str, Any] | None = None) -> None:
    plan = result.plan
    if fmt == "json":
        print_strict_json({
            "kind": plan.kind.value,
            "model": plan.model,
            "environment": plan.environment or None,
            "oldVersion": str(plan.old_version) if plan.old_version else None,
            "newVersion": str(plan.new_version),
            "written": result.written,
            "notes": list(plan.notes),
            "branch": result.commit.branch if result.commit else None,
            "commit": result.commit.sha if result.commit else None,
            "commitCreated": result.commit.created if result.commit else None,
            "pushed": result.pushed,
            "pullRequest": {"number": result.pull_request.number, "url": result.pull_request.url, "created": result.pr_created} if result.pull_request else None,
            **(extra or {}),
        })
        return
    for note in plan.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"{plan.title} ({plan.old_version} -> {plan.new_version})")
    for path in result.written:
        click.echo(f"  edited {path}")
    if result.commit:
        state = "committed" if result.commit.created else "unchanged, reused"
        click.echo(f"  {state} {result.commit.sha[:12]} on branch {result.commit.branch} (from {result.commit.base_branch})")
    if result.pushed:
        click.echo("  pushed to origin")
    if result.pull_request:
        state = "opened" if result.pr_created else "updated"
        click.echo(f"  {state} pull request #{result.pull_request.number} {result.pull_request.url}")

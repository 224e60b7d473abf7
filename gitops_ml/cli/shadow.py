"""`gitops-ml shadow report MODEL --env ENV --capture DIR`: a shadow's answers against the stable's."""

from __future__ import annotations

from pathlib import Path

import click

from gitops_ml.cli._common import handle_errors, repository_options
from gitops_ml.cli._registry import print_strict_json
from gitops_ml.repo.handle import Repository
from gitops_ml.rollout.shadow import ShadowReportRequest, shadow_report, to_json, to_markdown


@click.group("shadow")
def command() -> None:
    """Evidence from a shadow (rollout.shadow of a deployment file): its captured answers."""


@command.command("report")
@click.argument("model")
@click.option("--env", "env", required=True, metavar="ENV", help="Environment whose deployment file declares the shadow.")
@click.option("--capture", "capture", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Local directory of captures (<model>/<version>/<date>/<hour>/*.jsonl), e.g. synced from the capture volume or bucket.")
@click.option("--limit", type=click.IntRange(0, 1000), default=5, show_default=True, help="Disagreements listed with their inputs.")
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown", show_default=True, help="Markdown for a pull request comment, JSON for machines.")
@repository_options()
def report(model: str, env: str, capture: Path, limit: int, fmt: str, repo: Repository) -> None:
    """Join the answers of the stable version and of its shadow by request id (the mirror carries the
    caller's X-Request-Id): agreement, a stable x candidate confusion table (classes) or error
    statistics (scores), latency of each, and the first disagreements with their inputs."""
    with handle_errors():
        result = shadow_report(ShadowReportRequest(repo, model, env, capture, limit))
        if fmt == "json":
            print_strict_json(to_json(result))
        else:
            click.echo(to_markdown(result), nl=False)

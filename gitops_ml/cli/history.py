"""`gitops-ml history M`: every version of a model, who registered it, and where and when it ran."""

from __future__ import annotations

import math

import click

from gitops_ml.adapters.git import SHALLOW_HINT
from gitops_ml.cli._common import FORMAT_OPTION, echo_err, handle_errors, repository_options
from gitops_ml.cli._registry import (
    REV_OPTION,
    day,
    number,
    print_strict_json,
    record_json,
    run_text,
    short,
)
from gitops_ml.history.fold import ModelHistory
from gitops_ml.registry.service import history
from gitops_ml.repo.handle import Repository


def _text(found: ModelHistory) -> None:
    newest = found.newest
    click.echo(f"{found.model}: {len(found.versions)} version(s), newest {newest.version if newest else '-'}")
    previous: dict[str, float] = {}
    lines = []
    for record in found.versions:
        spec = record.spec
        block = [
            f"{found.model}@{record.version}  {day(record.commit)}  {short(record.commit.sha)}  "
            f"{record.commit.author} <{record.commit.email}>" + ("  tagged" if record.tagged else ""),
            f"  artifact  {spec.artifact.uri}  sha256:{spec.artifact.sha256[:12]}",
        ]
        if spec.metrics:
            parts = []
            for name, value in sorted(spec.metrics.items()):
                delta = ""
                if isinstance(value, (int, float)) and isinstance(previous.get(name), (int, float)) and math.isfinite(value - previous[name]):
                    delta = f" ({value - previous[name]:+g})"
                parts.append(f"{name} {number(value)}{delta}")
            block.append("  metrics   " + ", ".join(parts))
            previous = dict(spec.metrics)
        for i, run in enumerate(record.runs):
            block.append(("  ran in    " if i == 0 else "            ") + run_text(run))
        if not record.runs:
            block.append("  ran in    (no environment)")
        lines.append(block)
    for block in reversed(lines):  # newest first, like git log
        for line in block:
            click.echo(line)


@click.command("history")
@click.argument("model")
@repository_options()
@REV_OPTION
@FORMAT_OPTION
def command(model: str, repo: Repository, rev: str, fmt: str) -> None:
    """Show every version of MODEL, newest first: commit, date, author, artifact, metrics, and the
    environments that ran it and when (from the history of deployments/<env>/MODEL.yaml).

    Answered from first-parent git history at --rev in a few git calls, so it stays fast on
    repositories with thousands of commits.
    """
    with handle_errors():
        found = history(repo, model, rev)
        if not found.complete:
            echo_err(f"warning: shallow clone: versions older than the first fetched commit are missing\nhint: {SHALLOW_HINT}")
        if fmt == "json":
            print_strict_json(
                {
                    "model": found.model,
                    "newest": str(found.newest.version) if found.newest else None,
                    "versions": [record_json(found.model, r) for r in reversed(found.versions)],
                    "running": {env: str(run.version) for env, run in found.running.items()},
                    "complete": found.complete,
                }
            )
        else:
            _text(found)

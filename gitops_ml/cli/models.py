"""`gitops-ml models`: each model, its newest version, and the version each environment runs."""

from __future__ import annotations

import click

from gitops_ml.cli._common import FORMAT_OPTION, handle_errors, repository_options
from gitops_ml.cli._registry import REV_OPTION, print_strict_json, short
from gitops_ml.registry.service import ModelsResult, list_models
from gitops_ml.repo.handle import Repository


def _json(result: ModelsResult) -> dict[str, object]:
    return {
        "commit": result.commit,
        "environments": list(result.environments),
        "models": [
            {
                "name": m.model,
                "newest": str(m.newest) if m.newest else None,
                "tagged": m.tagged,
                "taggedVersions": m.tagged_versions,
                "environments": {
                    e.environment: {"pin": str(e.pin), "version": str(e.version) if e.version else None, "tracking": e.tracking}
                    for e in m.environments
                },
            }
            for m in result.models
        ],
    }


def _text(result: ModelsResult) -> None:
    header = ["MODEL", "NEWEST", "TAGGED", *result.environments]
    rows = [header]
    for m in result.models:
        runs = {e.environment: e for e in m.environments}
        cells = [m.model, str(m.newest) if m.newest else "(unreadable)", "yes" if m.tagged else "no"]
        for env in result.environments:
            state = runs.get(env)
            cells.append("-" if state is None else f"{state.version or '?'}{'*' if state.tracking else ''}")
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if any(e.tracking for m in result.models for e in m.environments):
        click.echo("* tracks the newest version")
    click.echo(f"{len(result.models)} model(s) at {short(result.commit)}")


@click.command("models")
@repository_options(positional=True)
@REV_OPTION
@FORMAT_OPTION
def command(repo: Repository, rev: str, fmt: str) -> None:
    """List the models of REPO (default: .) with their newest version and what each environment runs.

    Read from git at --rev: model.yaml files, deployments/<env>/<model>.yaml pins and
    `<model>@v<version>` tags. A `*` marks an environment that tracks the newest version.
    """
    with handle_errors():
        result = list_models(repo, rev)
        if fmt == "json":
            print_strict_json(_json(result))
        else:
            _text(result)

"""`gitops-ml compare M@A M@B`: what changed between two versions (metrics, schema, dependencies, artifact)."""

from __future__ import annotations

import click

from gitops_ml.cli._common import FORMAT_OPTION, handle_errors, repository_options
from gitops_ml.cli._registry import REV_OPTION, number, print_strict_json
from gitops_ml.errors import UsageError
from gitops_ml.registry.service import CompareResult, compare, parse_model_version
from gitops_ml.repo.handle import Repository


def _json(result: CompareResult) -> dict[str, object]:
    old, new = result.old.spec, result.new.spec
    return {
        "model": result.model,
        "old": {"version": str(result.old.version), "commit": result.old.commit.sha},
        "new": {"version": str(result.new.version), "commit": result.new.commit.sha},
        "metrics": [{"name": m.name, "old": m.old, "new": m.new, "delta": m.delta} for m in result.metrics],
        "schema": {"changed": result.schema_changed, "breaking": bool(result.schema_breaks), "breaks": list(result.schema_breaks)},
        "dependencies": [{"name": d.name, "old": d.old, "new": d.new} for d in result.dependencies],
        "artifact": {
            "changed": result.artifact_changed,
            "old": {"uri": old.artifact.uri, "sha256": old.artifact.sha256},
            "new": {"uri": new.artifact.uri, "sha256": new.artifact.sha256},
        },
        "files": {"added": list(result.files_added), "removed": list(result.files_removed), "changed": list(result.files_changed)},
        "notes": list(result.notes),
    }


def _text(result: CompareResult) -> None:
    old, new = result.old.spec, result.new.spec
    click.echo(f"{result.model} {result.old.version} -> {result.new.version}")
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo("metrics" if result.metrics else "metrics: none")
    for m in result.metrics:
        delta = f"  ({m.delta:+g})" if m.delta is not None else ""
        click.echo(f"  {m.name}  {number(m.old) if m.old is not None else '-'} -> {number(m.new) if m.new is not None else '-'}{delta}")
    if not result.schema_changed:
        click.echo("input schema: unchanged")
    elif not result.schema_breaks:
        click.echo("input schema: changed, compatible with old requests")
    else:
        click.echo("input schema: BREAKING")
        for reason in result.schema_breaks:
            click.echo(f"  {reason}")
    click.echo("dependencies" if result.dependencies else "dependencies: unchanged")
    for d in result.dependencies:
        if d.old is None:
            click.echo(f"  + {d.new}")
        elif d.new is None:
            click.echo(f"  - {d.old}")
        else:
            click.echo(f"  {d.old} -> {d.new}")
    if result.artifact_changed:
        click.echo(f"artifact: {old.artifact.uri} sha256:{old.artifact.sha256[:12]} -> {new.artifact.uri} sha256:{new.artifact.sha256[:12]}")
    else:
        click.echo("artifact: unchanged")
    for label, paths in (("added", result.files_added), ("removed", result.files_removed), ("changed", result.files_changed)):
        if paths:
            click.echo(f"files {label}: {', '.join(paths)}")


@click.command("compare")
@click.argument("old", metavar="MODEL@A")
@click.argument("new", metavar="MODEL@B")
@repository_options()
@REV_OPTION
@FORMAT_OPTION
def command(old: str, new: str, repo: Repository, rev: str, fmt: str) -> None:
    """Compare two versions of one model: metrics delta, input schema changes (and whether they
    break old requests), dependency changes, artifact and file changes.

    B may be given as a bare version: `gitops-ml compare iris@1.0.0 1.1.0`.
    """
    with handle_errors():
        model, a = parse_model_version(old)
        other, b = parse_model_version(new if "@" in new else f"{model}@{new}")
        if other != model:
            raise UsageError(f"compare two versions of one model, not {model} and {other}")
        result = compare(repo, model, a, b, rev)
        if fmt == "json":
            print_strict_json(_json(result))
        else:
            _text(result)

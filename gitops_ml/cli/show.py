"""`gitops-ml show M@V`: one version's files, artifact, metrics, lineage, image reference and environments."""

from __future__ import annotations

import click

from gitops_ml.cli._common import FORMAT_OPTION, handle_errors, repository_options
from gitops_ml.cli._registry import REV_OPTION, number, print_strict_json, record_json, run_json, short
from gitops_ml.registry.service import ShowResult, parse_model_version, show
from gitops_ml.repo.handle import Repository


def _json(result: ShowResult) -> dict[str, object]:
    record = result.record
    data = record_json(result.model_version.name, record)
    data.update(
        {
            "image": result.image_ref,
            "imageProblem": result.image_problem or None,
            "files": [{"path": f.path, "size": f.size} for f in result.files],
            "running": [run_json(r) for r in result.running],
            "description": record.spec.description,
        }
    )
    return data


def _text(result: ShowResult) -> None:
    record, spec = result.record, result.record.spec
    model = result.model_version.name
    click.echo(f"{model}@{record.version}")
    if spec.description:
        click.echo(f"  {spec.description}")
    click.echo(f"  commit     {short(record.commit.sha)}  {record.commit.date}  {record.commit.author} <{record.commit.email}>")
    if record.tagged:
        click.echo(f"  tag        {model}@v{record.version}")
    elif record.tag_commit:
        click.echo(f"  tag        none: {model}@v{record.version} is on {short(record.tag_commit)}, which did not register this version here (see `gitops-ml tag`)")
    else:
        click.echo("  tag        none (create it with `gitops-ml tag`)")
    click.echo(f"  image      {result.image_ref}" if result.image_ref else f"  image      unknown: {result.image_problem}")
    if spec.framework:
        click.echo(f"  framework  {spec.framework} {spec.framework_version}".rstrip())
    click.echo(f"  artifact   {spec.artifact.uri}  sha256:{spec.artifact.sha256}")
    for title, values in (("metrics", spec.metrics), ("lineage", spec.lineage)):
        for i, (key, value) in enumerate(sorted(values.items())):
            click.echo(f"  {title if i == 0 else '':<9}  {key} {number(value)}")
    running = ", ".join(f"{r.environment} (since {r.since.date[:10]})" for r in result.running)
    click.echo(f"  running    {running or 'nowhere'}")
    for i, info in enumerate(result.files):
        click.echo(f"  {'files' if i == 0 else '':<9}  {info.path}  {info.size} B")


@click.command("show")
@click.argument("model_version", metavar="MODEL@VERSION")
@repository_options()
@REV_OPTION
@FORMAT_OPTION
def command(model_version: str, repo: Repository, rev: str, fmt: str) -> None:
    """Show MODEL@VERSION (e.g. iris@1.2.0): its commit and tag, content-addressed image reference,
    artifact, metrics, lineage, files, and the environments running it.

    The files are read from the commit that registered the version, not from the working tree.
    """
    with handle_errors():
        model, version = parse_model_version(model_version)
        result = show(repo, model, version, rev)
        if fmt == "json":
            print_strict_json(_json(result))
        else:
            _text(result)

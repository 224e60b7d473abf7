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
    if result.referrers is not None:
        found = result.referrers
        data["registry"] = {"digest": found.digest or None, "via": found.via or None, "problem": found.problem or None,
                            "referrers": [{"artifactType": r.artifact_type, "ref": r.ref} for r in found.items]}
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
    if result.referrers is not None:
        found = result.referrers
        if found.problem:
            click.echo(f"  registry   {found.problem}")
        else:
            click.echo(f"  digest     {found.digest}")
            names = {"application/vnd.cyclonedx+json": "sbom", "application/vnd.in-toto+json": "provenance"}
            for item in found.items:
                click.echo(f"  {names.get(item.artifact_type, 'referrer'):<9}  {item.ref}  ({item.artifact_type}, via {found.via})")
            if not found.items:
                click.echo(f"  referrers  none (nothing was pushed next to the image; via {found.via})")
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
@click.option("--referrers", is_flag=True, help="Also ask the image's registry for its digest and the SBOM and provenance pushed next to it.")
@FORMAT_OPTION
def command(model_version: str, repo: Repository, rev: str, referrers: bool, fmt: str) -> None:
    """Show MODEL@VERSION (e.g. iris@1.2.0): its commit and tag, content-addressed image reference,
    artifact, metrics, lineage, files, and the environments running it.

    The files are read from the commit that registered the version, not from the working tree;
    only --referrers asks the registry (`gitops-ml verify-image REF` checks what it lists).
    """
    with handle_errors():
        model, version = parse_model_version(model_version)
        result = show(repo, model, version, rev, referrers=referrers)
        if fmt == "json":
            print_strict_json(_json(result))
        else:
            _text(result)

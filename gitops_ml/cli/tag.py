"""`gitops-ml tag`: create the missing `<model>@v<version>` annotated tags (CI runs it after a merge)."""

from __future__ import annotations

import click

from gitops_ml.cli._common import FORMAT_OPTION, handle_errors, repository_options
from gitops_ml.cli._registry import REV_OPTION, print_strict_json, short
from gitops_ml.registry.service import create_missing_tags
from gitops_ml.repo.handle import Repository


@click.command("tag")
@repository_options(positional=True)
@REV_OPTION
@click.option("--push", "push", is_flag=True, help="Push the created tags to the remote (see --remote).")
@click.option("--remote", default="origin", show_default=True, help="Remote that --push pushes to.")
@click.option("--dry-run", is_flag=True, help="List the tags that would be created; create nothing.")
@FORMAT_OPTION
def command(repo: Repository, rev: str, push: bool, remote: str, dry_run: bool, fmt: str) -> None:
    """Tag every version registered in the history of --rev with an annotated `<model>@v<version>`
    tag on the commit that set it (GTO's grammar, so `gto show` reads the repository too).

    Idempotent: tags already in place are left alone. A tag that points at another commit is never
    moved: the command fails (exit 4) and creates nothing. Tag names carry no path, so two gitops-ml
    repositories in one git repository that both have a model of the same name cannot both tag it.
    """
    with handle_errors():
        result = create_missing_tags(repo, rev, push=remote if push else None, dry_run=dry_run)
        if fmt == "json":
            print_strict_json(
                {
                    "created": [{"tag": p.tag.name, "commit": p.commit} for p in result.created],
                    "existing": result.existing,
                    "dryRun": dry_run,
                    "pushed": result.pushed,
                }
            )
            return
        for planned in result.created:
            click.echo(f"{'would create' if dry_run else 'created'} {planned.tag.name} -> {short(planned.commit)}")
        done = "would be created" if dry_run else "created"
        pushed = f" and pushed to {remote}" if result.pushed else ""
        click.echo(f"{len(result.created)} tag(s) {done}{pushed}, {result.existing} already in place")

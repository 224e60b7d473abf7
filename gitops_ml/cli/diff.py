"""`gitops-ml diff`: the rendered-manifest difference between --base REF and the working tree."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gitops_ml.cli._common import handle_errors, print_json, repository_options, require_repository
from gitops_ml.errors import UsageError
from gitops_ml.render.diff import DiffResult, format_markdown, format_text, render_diff

if TYPE_CHECKING:
    from gitops_ml.repo.handle import Repository


@click.command("diff")
@repository_options(positional=True)
@click.option("--base", required=True, metavar="REF", help="Git revision to compare with, e.g. origin/main.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True,
    help="text for terminals, markdown for a pull-request comment (collapsed section per model), json for tools.",
)
@click.option("--exit-code", is_flag=True, help="Exit 1 when the rendered manifests differ (like `git diff --exit-code`).")
def command(repo: Repository, base: str, fmt: str, exit_code: bool) -> None:
    """Render --base REF and the working tree of REPO (default: .) and show what changes, per
    environment and model: images, replicas and every manifest line."""
    with handle_errors():
        if not repo.root.is_dir():
            raise UsageError(f"{repo.root} is not a directory")
        require_repository(repo)
        result = render_diff(repo, base)
        if fmt == "json":
            print_json(_diff_json(result))
        else:
            click.echo(format_markdown(result) if fmt == "markdown" else format_text(result), nl=False)
        if exit_code and not result.empty:
            click.get_current_context().exit(1)


def _diff_json(result: DiffResult) -> dict[str, object]:
    return {
        "base": result.base,
        "renderRoot": result.render_root,
        "changed": not result.empty,
        "endpoints": [
            {
                "environment": c.environment, "model": c.model, "status": c.status,
                "image": {"before": c.image_before, "after": c.image_after},
                "replicas": {"before": c.replicas_before, "after": c.replicas_after},
                "files": [{"path": f"{result.render_root}/{f.path}", "status": f.status, "diff": "".join(f.lines)} for f in c.files],
            }
            for c in result.changes
        ],
    }

"""`gitops-ml pr-comment`: post a markdown file as the one gitops-ml comment on a pull request,
updating it on later runs instead of adding another (used by the pull request workflow)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from gitops_ml.adapters.github import MAX_COMMENT_CHARS, GitHubClient, settings_from_env
from gitops_ml.cli._common import handle_errors
from gitops_ml.errors import UsageError


def _pr_from_event() -> int | None:
    path = os.environ.get("GITHUB_EVENT_PATH")
    if not path or not Path(path).is_file():
        return None
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError:
        return None
    number = (event.get("pull_request") or {}).get("number")
    return int(number) if isinstance(number, int) else None


@click.command("pr-comment")
@click.option("--pr", "number", type=int, help="Pull request number (default: the one in GITHUB_EVENT_PATH).")
@click.option("--body-file", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Markdown to post.")
@click.option("--marker", default="rendered-diff", show_default=True, help="Names the comment; one comment per marker.")
def command(number: int | None, body_file: Path, marker: str) -> None:
    """Create or update the gitops-ml comment on a pull request (GITHUB_TOKEN, GITHUB_REPOSITORY)."""
    with handle_errors():
        number = number or _pr_from_event()
        if not number:
            raise UsageError("no pull request number: pass --pr N (or run in a pull_request workflow)")
        if not body_file.is_file():
            raise UsageError(f"{body_file} does not exist")
        body = body_file.read_text(encoding="utf-8").strip() or "No change to the rendered manifests."
        with GitHubClient(settings_from_env(os.environ)) as client:
            comment, created = client.upsert_comment(number, f"<!-- gitops-ml:{marker} -->", body)
        click.echo(f"{'posted' if created else 'updated'} comment {comment.url or comment.id} on #{number}")
        if comment.cut:
            click.echo(
                f"note: {body_file} is {len(body):,} characters; the comment was cut to fit GitHub's"
                f" {MAX_COMMENT_CHARS:,}-character limit (run `gitops-ml diff` locally for the whole diff)",
                err=True,
            )

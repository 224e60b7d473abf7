"""`gitops-ml predictions MODEL`: the committed sample scored by the committed version (--base) and by
the working tree's model directory, each in its own environment; the rows that changed first, and
the agreement rate. Its markdown is what `bump --predictions FILE` puts in the pull request."""

from __future__ import annotations

from typing import Any

import click

from gitops_ml.cli._common import (
    ENV_MANAGER_OPTION,
    echo_err,
    handle_errors,
    in_ci,
    print_json,
    repository_options,
    require_repository,
)
from gitops_ml.errors import GitopsMlError, RegistryError
from gitops_ml.repo.handle import Repository

NEW_LABEL = "this change"  # the working tree's version, when it still carries the committed version's number


@click.command("predictions")
@click.argument("model")
@repository_options()
@click.option(
    "--base", default="HEAD", show_default=True, metavar="REV", help="Commit whose version of MODEL is the one before."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="Output format (markdown: for `bump --predictions FILE`).",
)
@ENV_MANAGER_OPTION
def command(model: str, repo: Repository, base: str, fmt: str, env_manager: str) -> None:
    """Score MODEL's committed sample (the working tree's manifest `sample:`) with the version at
    --base and with the working tree's model directory (a retrained artifact, a changed score.py),
    each in its own environment, and show the answers row by row: changed rows first, then the
    agreement rate.

    Runs both versions' code: in CI, run it in a step that holds no write token. A version that
    cannot score (init() fails, the answer is an error) is part of the report, not a failure.
    """
    with handle_errors():
        require_repository(repo)
        from gitops_ml.local import predictions as diffs  # noqa: PLC0415 - runs models: loaded only here

        try:
            old = diffs.version_files(repo.at(base), model)
        except (GitopsMlError, FileNotFoundError) as exc:
            raise RegistryError(
                f"no version of {model} at {base} to compare with ({getattr(exc, 'message', exc)})",
                hint="commit the model first, or give --base REV",
            ) from None
        new = diffs.version_files(repo.worktree, model)
        if new.version == old.version:
            new = diffs.VersionFiles(NEW_LABEL, new.spec, new.manifest, new.files)
        progress = None if fmt != "text" or in_ci() else echo_err
        diff = diffs.compare_predictions(diffs.PredictionsRequest(model, old, new, env_manager), progress)
        if fmt == "markdown":
            click.echo(diffs.to_markdown(diff, env_manager=env_manager), nl=False)
        elif fmt == "json":
            print_json(_data(diff))
        else:
            _text(diff)


def _data(diff: Any) -> dict[str, Any]:
    return {
        "model": diff.model,
        "sample": diff.sample,
        "field": diff.field or None,
        "old": {"version": diff.old_version, "status": diff.old.status, "error": diff.old.error or None},
        "new": {"version": diff.new_version, "status": diff.new.status, "error": diff.new.error or None},
        "compared": len(diff.rows),
        "changed": len(diff.changed),
        "agreement": diff.agreement,
        "rows": [
            {"row": r.index, "input": r.input, "old": r.old, "new": r.new, "changed": r.changed}
            for r in [*diff.changed, *(r for r in diff.rows if not r.changed)]
        ],
    }


def _text(diff: Any) -> None:
    from gitops_ml.local.predictions import MAX_ROWS, short  # noqa: PLC0415

    for label, answer in ((diff.old_version, diff.old), (diff.new_version, diff.new)):
        if not answer.ok:
            click.echo(f"{label} could not score the sample: {answer.error or answer.status}")
    share = f" ({diff.agreement * 100:.1f} %)" if diff.agreement is not None else ""
    click.echo(
        f"{diff.model} {diff.old_version} -> {diff.new_version} on {diff.sample}: {len(diff.rows) - len(diff.changed)} of {len(diff.rows)} agree{share}, "
        f"{len(diff.changed)} changed"
    )
    for row in diff.changed[:MAX_ROWS]:
        shown = f"  input {short(row.input)}" if row.input is not None else ""
        click.echo(f"  row {row.index}: {short(row.old)} -> {short(row.new)}{shown}")

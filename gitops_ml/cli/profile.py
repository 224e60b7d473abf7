"""`gitops-ml profile DATA --model M`: write the reference profile of a version's training data."""

from __future__ import annotations

from pathlib import Path

import click

from gitops_ml.cli._common import echo_err, handle_errors, repository_options, require_repository
from gitops_ml.repo.handle import Repository


@click.command("profile")
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--model", "-m", "model", required=True, help="Model (models/<model>/) the data trained.")
@repository_options()
@click.option(
    "--prediction", "predictions", multiple=True, metavar="COLUMN[=PATH]",
    help="A column of the model's predictions, and where the answer holds it (default: the column's name, e.g. predictions). "
    "Repeatable; default: a column named prediction or predictions.",
)
@click.option("--categorical", multiple=True, metavar="COLUMN", help="Profile this column as categories (default: strings, booleans, and integers with few values).")
@click.option("--numeric", multiple=True, metavar="COLUMN", help="Profile this column as numbers.")
@click.option("--output", "-o", default="", help="File name in the model directory (default: model.yaml's reference, else reference.json).")
def command(data: Path, model: str, repo: Repository, predictions: tuple[str, ...], categorical: tuple[str, ...], numeric: tuple[str, ...], output: str) -> None:
    """Profile DATA (CSV, Parquet or JSON lines: the training inputs, one column per feature, and the
    predictions) into models/<model>/reference.json and set `reference:` in model.yaml. Features are
    matched to the input schema: DataFrame and JSON inputs by column name, an ndarray input by the
    remaining columns in order. `gitops-ml monitor` compares production with it."""
    with handle_errors():
        require_repository(repo)
        from gitops_ml.monitor.service import ProfileRequest, run_profile  # noqa: PLC0415

        result = run_profile(ProfileRequest(repo, model, data, predictions, categorical, numeric, output))
        profile = result.profile
        for note in profile.notes:
            echo_err(f"note: {note}")
        click.echo(
            f"wrote {result.path}: {len(profile.features)} feature(s), {len(profile.predictions)} prediction(s), {profile.rows} row(s)"
        )
        if result.model_file_changed:
            click.echo(f"set reference: {Path(result.path).name} in models/{model}/model.yaml")
        echo_err(f"hint: the profile is part of the version: commit models/{model}/, then `gitops-ml bump {model} --patch` registers it")

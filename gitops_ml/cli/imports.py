"""`gitops-ml import mlflow SOURCE --model NAME`: an MLflow model as a gitops-ml model, no score.py."""

from __future__ import annotations

import click

from gitops_ml.cli._common import echo_err, handle_errors, repository_options, require_repository
from gitops_ml.cli._edit_common import delivery_options, finish_interrupted, report, run_edit
from gitops_ml.repo.handle import Repository


@click.group("import")
def command() -> None:
    """Import a model from another registry as a gitops-ml model, served by a built-in scorer."""


@command.command("mlflow")
@click.argument("source")
@click.option("--model", "model", required=True, help="Name of the gitops-ml model (models/NAME); an existing one gets a new version.")
@click.option("--scorer", type=click.Choice(["auto", "mlflow"]), default="auto", show_default=True,
              help="auto: the lightest built-in that serves the model (sklearn or onnx need no MLflow in the image); mlflow: always mlflow.pyfunc.")
@click.option("--description", default="", help="model.yaml's description (for a new model).")
@repository_options()
@delivery_options
def mlflow(source: str, model: str, scorer: str, description: str, repo: Repository, branch: str | None, push: bool, pr: bool, fmt: str) -> None:
    """Import the MLflow model at SOURCE: a model directory, runs:/RUN_ID/PATH or models:/NAME/VERSION
    (resolved through $MLFLOW_TRACKING_URI).

    Writes models/NAME/ (artifact, model.yaml with the registered version, metrics and run, manifest
    with a built-in scorer, requirements as MLflow pinned them, schema and sample from the signature
    and input example) and a deployment per environment. When models/NAME exists, the import is a
    bump: --branch, --push and --pr deliver it as `bump` does.
    """
    with handle_errors():
        require_repository(repo)
        from gitops_ml.imports.mlflow import ImportRequest, import_mlflow  # noqa: PLC0415 - loads the serving package

        exists = (repo.root / "models" / model / "model.yaml").is_file()
        if not exists and (branch or push or pr):
            raise click.UsageError("--branch, --push and --pr deliver a new version of an existing model; a new model is written to the working tree for you to commit")
        if exists:
            finish_interrupted(repo)
        result = import_mlflow(ImportRequest(repo, source, model, scorer, description), deliver=lambda plan: run_edit(repo, plan, branch, push, pr))
        for note in result.notes:
            echo_err(f"note: {note}")
        if result.edit is not None:
            report(result.edit, fmt)
            return
        if fmt == "json":
            from gitops_ml.cli._registry import print_strict_json  # noqa: PLC0415

            print_strict_json({"model": result.model, "version": result.version, "builtin": result.builtin, "source": result.source,
                               "created": True, "written": result.written, "notes": result.notes})
            return
        click.echo(f"imported {source} as {result.model} {result.version} (builtin {result.builtin})")
        for path in result.written:
            click.echo(f"  wrote {path}")
        click.echo(f"next: gitops-ml predict models/{result.model} --data @models/{result.model}/sample.json; then commit models/{result.model} and deployments/")

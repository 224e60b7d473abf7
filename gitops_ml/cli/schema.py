"""`gitops-ml schema`: export the shipped JSON Schemas for editors; generate an input schema."""

from __future__ import annotations

from pathlib import Path

import click

from gitops_ml.atomic import write_atomic
from gitops_ml.cli._common import handle_errors
from gitops_ml.repo import catalog


@click.group("schema")
def command() -> None:
    """JSON Schemas: the four file kinds, and model input schemas."""


@command.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export(directory: Path) -> None:
    """Write the Repository, Model, Manifest and Deployment schemas into DIRECTORY (for editors)."""
    with handle_errors():
        for name, data in sorted(catalog.schema_files().items()):
            write_atomic(directory / name, data)
            click.echo(f"wrote {directory / name}")


@command.command("generate")
@click.option("--sample", "sample", type=click.Path(dir_okay=False, path_type=Path), help="sample.json: a JSON object of named inputs (with --model: checked against the model's schema).")
@click.option("--model", "model", type=click.Path(exists=True, path_type=Path),
              help="Learn the schema from the model: an MLflow model directory or zip, an ONNX graph, a pickled scikit-learn model, an XGBoost or LightGBM model file.")
@click.option("--builtin", type=click.Choice(["sklearn", "xgboost", "lightgbm", "onnx", "mlflow"]), help="How --model is read (default: told from the file).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the schema here (default: stdout).")
@click.option("--sample-output", type=click.Path(dir_okay=False, path_type=Path), help="With --model: write the model's own input example here (an MLflow input example).")
@click.option("--max-binary-bytes", type=click.IntRange(min=1), default=1024 * 1024, show_default=True, help="Size limit of each binary (base64) input.")
def generate(sample: Path | None, model: Path | None, builtin: str | None, output: Path | None, sample_output: Path | None, max_binary_bytes: int) -> None:
    """Infer the request schema from a sample (NumPy arrays, DataFrames, base64 binaries, plain JSON),
    or learn it from the model itself with --model: an MLflow signature (columns, types, optional
    columns, tensors, params), an ONNX graph's inputs, a model's feature names."""
    import json

    from gitops_ml.errors import LoadError, Location, UsageError
    from gitops_ml.repo.loading import parse_json

    with handle_errors():
        if sample is None and model is None:
            raise UsageError("give --sample (infer from a sample) or --model (learn from the model), or both")
        for target in (output, sample_output):
            if target is not None and sample is not None and target.resolve() == sample.resolve():
                raise UsageError(f"{target} is the sample itself: it would be replaced", hint="write the schema to schema.json")
        parsed = None
        if sample is not None:
            try:
                raw = sample.read_bytes()
            except OSError as exc:
                raise UsageError(f"cannot read {sample}: {exc.strerror}") from exc
            parsed = parse_json(str(sample), raw).data
        try:
            if model is not None:
                from gitops_ml.serving.model_schema import infer_model_schema  # noqa: PLC0415

                learnt = infer_model_schema(model, builtin or _builtin_of(model), sample=parsed)
                schema, example = learnt.schema, learnt.sample
                for note in learnt.notes:
                    click.echo(f"note: {note}", err=True)
            else:
                from gitops_ml.serving.inference import infer_schema  # noqa: PLC0415

                schema, example = infer_schema(parsed if parsed is not None else {}, max_binary_bytes=max_binary_bytes), None
        except LoadError as exc:
            if exc.location is not None:
                raise
            raise LoadError(exc.message, location=Location(str(sample if sample is not None else model)), hint=exc.hint) from exc
        text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        if sample_output is not None:
            if example is None:
                raise UsageError("the model carries no input example to write", hint="write the sample yourself")
            write_atomic(sample_output, (json.dumps(example, indent=2, ensure_ascii=False) + "\n").encode())
            click.echo(f"wrote {sample_output}", err=True)
        if output is None:
            click.echo(text, nl=False)
        else:
            write_atomic(output, text.encode())
            click.echo(f"wrote {output}", err=True)


def _builtin_of(model: Path) -> str:
    """The built-in that reads `model`, told from the file (or the MLflow directory)."""
    import zipfile

    from gitops_ml.errors import UsageError
    from gitops_ml.serving.builtins.catalog import BUILTINS, sniff_format

    if model.is_dir():
        if (model / "MLmodel").is_file():
            return "mlflow"
        raise UsageError(f"{model} is a directory without an MLmodel file", hint="point --model at an MLflow model directory or a model file")
    with open(model, "rb") as fh:
        head = fh.read(64)
    names: list[str] = []
    if zipfile.is_zipfile(model):
        with zipfile.ZipFile(model) as zf:
            names = zf.namelist()
    found = sniff_format(head, names)
    for builtin in BUILTINS.values():
        if found in builtin.formats:
            return builtin.name
    raise UsageError(f"cannot tell which library reads {model}", hint="pass --builtin sklearn|xgboost|lightgbm|onnx|mlflow")

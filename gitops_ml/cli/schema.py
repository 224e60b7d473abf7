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
@click.option("--sample", "sample", required=True, type=click.Path(dir_okay=False, path_type=Path), help="sample.json: a JSON object of named inputs.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the schema here (default: stdout).")
@click.option("--max-binary-bytes", type=click.IntRange(min=1), default=1024 * 1024, show_default=True, help="Size limit of each binary (base64) input.")
def generate(sample: Path, output: Path | None, max_binary_bytes: int) -> None:
    """Infer the request schema from a sample: NumPy arrays, DataFrames, base64 binaries, plain JSON."""
    import json

    from gitops_ml.errors import LoadError, Location, UsageError
    from gitops_ml.repo.loading import parse_json
    from gitops_ml.serving.inference import infer_schema

    with handle_errors():
        if output is not None and output.resolve() == sample.resolve():
            raise UsageError(f"-o {output} is the sample itself: the schema would replace it", hint="write the schema to schema.json")
        try:
            raw = sample.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {sample}: {exc.strerror}") from exc
        try:
            schema = infer_schema(parse_json(str(sample), raw).data, max_binary_bytes=max_binary_bytes)
        except LoadError as exc:
            if exc.location is not None:
                raise
            raise LoadError(exc.message, location=Location(str(sample)), hint=exc.hint) from exc
        text = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        if output is None:
            click.echo(text, nl=False)
        else:
            write_atomic(output, text.encode())
            click.echo(f"wrote {output}", err=True)

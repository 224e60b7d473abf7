"""`gitops-ml schema`: export the shipped JSON Schemas for editors; generate an input schema."""

from __future__ import annotations

from pathlib import Path

import click

from gitops_ml import catalog
from gitops_ml.cli._common import handle_errors
from gitops_ml.writing_atomic import write_atomic


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

"""`gitops-ml bump MODEL`: the retraining change — next version, new artifact and metrics in model.yaml."""

from __future__ import annotations

from pathlib import Path

import click

from gitops_ml.cli._common import handle_errors
from gitops_ml.cli._edit_common import delivery_options, report, run_edit
from gitops_ml.registry.edits import BumpRequest, Part, plan_bump


@click.command("bump")
@click.argument("model")
@click.option("--repo", type=click.Path(file_okay=False, path_type=Path), default=".", show_default=True, help="Repository root.")
@click.option("--artifact", metavar="URI", help="New artifact: a path in the model directory or an https://, s3://, oci:// URI (default: keep the URI).")
@click.option("--sha256", metavar="HEX", help="SHA-256 of the artifact; computed (and checked) for a path in the repository.")
@click.option("--metrics", "metrics_file", type=click.Path(dir_okay=False, path_type=Path), help="JSON or YAML file of metric name -> number; replaces the metrics.")
@click.option("--major", "part", flag_value=Part.MAJOR.value, help="Incompatible input or output schema.")
@click.option("--minor", "part", flag_value=Part.MINOR.value, help="Retrained model, compatible schema (the default).")
@click.option("--patch", "part", flag_value=Part.PATCH.value, help="Serving code or configuration only.")
@click.option("--version", "version", metavar="V", help="Set this exact version (must be newer).")
@delivery_options
def command(model: str, repo: Path, artifact: str | None, sha256: str | None, metrics_file: Path | None, part: str | None,
            version: str | None, branch: str | None, push: bool, pr: bool, fmt: str) -> None:
    """Register a new version of MODEL: bump model.yaml's version (MINOR by default, MAJOR when the
    input schema broke), set the artifact URI and sha256 and the metrics.

    Comments and formatting of model.yaml are kept. With --branch the model directory is committed
    on that branch; --push and --pr take it to origin and a GitHub pull request.
    """
    with handle_errors():
        if part and version:
            raise click.UsageError("give --major/--minor/--patch or --version, not both")
        plan = plan_bump(BumpRequest(repo, model, artifact, sha256, metrics_file, Part(part) if part else None, version))
        report(run_edit(repo, plan, branch, push, pr), fmt)

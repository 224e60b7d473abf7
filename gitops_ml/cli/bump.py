"""`gitops-ml bump MODEL`: the retraining change — next version, new artifact and metrics in model.yaml."""

from __future__ import annotations

from pathlib import Path

import click

from gitops_ml.cli._common import handle_errors, repository_options
from gitops_ml.cli._edit_common import delivery_options, finish_interrupted, report, run_edit
from gitops_ml.edits.plans import BumpRequest, Part, plan_bump
from gitops_ml.repo.handle import Repository


@click.command("bump")
@click.argument("model")
@repository_options()
@click.option("--artifact", metavar="URI", help="New artifact: a path in the model directory or an https://, s3://, oci:// URI (default: keep the URI).")
@click.option("--sha256", metavar="HEX", help="SHA-256 of the artifact; computed (and checked) for a path in the repository.")
@click.option("--metrics", "metrics_file", type=click.Path(dir_okay=False, path_type=Path), help="JSON or YAML file of metric name -> number; replaces the metrics.")
# three flags, not one flag_value option: click lets the last of `--major --patch` win silently
@click.option("--major", is_flag=True, help="Incompatible input or output schema.")
@click.option("--minor", is_flag=True, help="Retrained model, compatible schema (the default).")
@click.option("--patch", is_flag=True, help="Serving code or configuration only.")
@click.option("--version", "version", metavar="V", help="Set this exact version (must be newer).")
@click.option("--reference", "reference_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Reference profile of the new version's training data (as `gitops-ml profile` writes it); replaces the committed one.")
@delivery_options
def command(model: str, repo: Repository, artifact: str | None, sha256: str | None, metrics_file: Path | None, major: bool, minor: bool,
            patch: bool, version: str | None, reference_file: Path | None, branch: str | None, push: bool, pr: bool, fmt: str) -> None:
    """Register a new version of MODEL: bump model.yaml's version (MINOR by default, MAJOR when the
    input schema broke), set the artifact URI and sha256, the metrics and the reference profile
    that `monitor` compares the new version's traffic with.

    Comments and formatting of model.yaml are kept. With --branch the model directory is committed
    on that branch; --push and --pr take it to origin and a GitHub pull request.
    """
    with handle_errors():
        parts = [p for p, given in ((Part.MAJOR, major), (Part.MINOR, minor), (Part.PATCH, patch)) if given]
        if len(parts) > 1:
            named = " and ".join(f"--{p.value}" for p in parts)
            raise click.UsageError(f"{named} cannot be used together; give one of --major, --minor, --patch")
        if parts and version:
            raise click.UsageError(f"--{parts[0].value} and --version cannot be used together; give one of them")
        finish_interrupted(repo)
        reference = _reference(repo, model, reference_file) if reference_file is not None else None
        plan = plan_bump(BumpRequest(repo, model, artifact, sha256, metrics_file, parts[0] if parts else None, version, reference=reference))
        report(run_edit(repo, plan, branch, push, pr), fmt)


def _reference(repo: Repository, model: str, path: Path) -> str:
    """The profile's text, checked against the profile schema, the model and its input schema."""
    from gitops_ml.monitor.service import check_reference  # noqa: PLC0415 - jsonschema loads only here

    return check_reference(repo, model, path)

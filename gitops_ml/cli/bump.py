"""`gitops-ml bump MODEL`: the retraining change — next version, new artifact, metrics and reference
profile in model.yaml; with --evidence and --predictions, a pull request that says why (the monitor
report that started it) and what changes (the predictions diff on the committed sample, made
beforehand by `gitops-ml predictions`: that runs the models' code, which must never share a step
with the token that pushes)."""

from __future__ import annotations

import re
from pathlib import Path

import click

from gitops_ml.cli._common import handle_errors, repository_options
from gitops_ml.cli._edit_common import delivery_options, finish_interrupted, github_settings, report, run_edit
from gitops_ml.edits.plans import BumpRequest, Part, plan_bump
from gitops_ml.edits.prbody import Evidence, evidence_section
from gitops_ml.errors import UsageError
from gitops_ml.repo.handle import Repository

_ISSUES = re.compile(r"^#?\d+(\s*,\s*#?\d+)*$")


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
@click.option("--evidence", default="", metavar="ISSUES|FILE",
              help="Why this retraining: GitHub issue numbers (12 or 12,14: what `gitops-ml alert` dispatches with; needs GITHUB_TOKEN) "
                   "or a markdown file; goes into the pull request body.")
@click.option("--predictions", "predictions_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Markdown of `gitops-ml predictions MODEL --format markdown` (the committed version's and the new one's answers on "
                   "the committed sample) for the pull request body.")
@delivery_options
def command(model: str, repo: Repository, artifact: str | None, sha256: str | None, metrics_file: Path | None, major: bool, minor: bool,
            patch: bool, version: str | None, reference_file: Path | None, evidence: str, predictions_file: Path | None,
            branch: str | None, push: bool, pr: bool, fmt: str) -> None:
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
        found = _evidence(repo, evidence.strip()) if evidence.strip() else []
        predictions = _read_text("--predictions", predictions_file) if predictions_file is not None else ""
        plan = plan_bump(BumpRequest(repo, model, artifact, sha256, metrics_file, parts[0] if parts else None, version, reference=reference))
        report(run_edit(repo, plan, branch, push, pr, evidence=evidence_section(found), predictions=predictions), fmt)


def _reference(repo: Repository, model: str, path: Path) -> str:
    """The profile's text, checked against the profile schema, the model and its input schema."""
    from gitops_ml.monitor.service import check_reference  # noqa: PLC0415 - jsonschema loads only here

    return check_reference(repo, model, path)


def _evidence(repo: Repository, given: str) -> list[Evidence]:
    """The issues `gitops-ml alert` filed (read from GitHub), or a markdown file."""
    if _ISSUES.match(given):
        from gitops_ml.adapters.github import GitHubClient  # noqa: PLC0415

        numbers = sorted({int(n.strip().lstrip("#")) for n in given.split(",")})
        with GitHubClient(github_settings(repo)) as client:
            issues = [client.get_issue(n) for n in numbers]
        return [Evidence(f"#{i.number} {i.title}", i.body, f"#{i.number}") for i in issues]
    path = Path(given)
    if not path.is_file():
        raise UsageError(f"--evidence {given}: neither issue numbers (12 or 12,14) nor an existing file")
    return [Evidence(path.name, _read_text("--evidence", path))]


def _read_text(flag: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{flag} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{flag} {path}: cannot read it ({exc})") from exc

"""`gitops-ml verify-image REF`: an image's labels, SBOM and provenance checked against git."""

from __future__ import annotations

import click

from gitops_ml.build.verify import Verification, verify_image
from gitops_ml.cli._common import FORMAT_OPTION, handle_errors, print_json, repository_options, require_repository
from gitops_ml.repo.handle import Repository
from gitops_ml.validate.rules import validate_repository


def _json(result: Verification) -> dict[str, object]:
    return {"ref": result.ref, "digest": result.digest, "model": result.model, "version": result.version, "ok": result.ok,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in result.checks]}


@click.command("verify-image")
@click.argument("ref", metavar="REF")
@repository_options()
@FORMAT_OPTION
def command(ref: str, repo: Repository, fmt: str) -> None:
    """Check the image REF (REGISTRY/REPOSITORY:TAG or @sha256:...) in its registry against the version's
    content in the git repository REPO (default: .): the labels and the content tag, the SBOM inside the
    image and the one pushed next to it (packages equal to the committed lock, the artifact's sha256),
    and the provenance statement (subject digest, revision, content digest, lock and SBOM hashes).

    Exits 1 when a check fails. Signatures are verified by the cluster's admission policy (cosign).
    """
    with handle_errors():
        require_repository(repo)
        report = validate_repository(repo)
        if report.specs is None:
            from gitops_ml.errors import ValidationError  # noqa: PLC0415

            raise ValidationError([f for f in report.findings if f.severity == "error"], "the repository does not validate; run `gitops-ml validate`")
        result = verify_image(repo, report.specs, ref)
        if fmt == "json":
            print_json(_json(result))
        else:
            click.echo(f"{result.ref} ({result.digest}): {result.model}@{result.version}")
            for c in result.checks:
                click.echo(f"  {'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
            click.echo("verified: the image matches git" if result.ok else "NOT verified: see FAIL above")
        if not result.ok:
            click.get_current_context().exit(1)

"""`gitops-ml render`: write the render root, or with --check compare it, and with --verify build it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from gitops_ml.cli._common import (
    FORMAT_OPTION,
    echo_err,
    finding_dict,
    handle_errors,
    print_json,
    repository_options,
    require_repository,
)
from gitops_ml.errors import CheckFailed, UsageError
from gitops_ml.render.service import RenderRequest, RenderResult, render_repository
from gitops_ml.render.verify import VerifyReport, crd_directories, verify_render
from gitops_ml.repo.handle import Repository

MAX_LISTED = 200


@dataclass(frozen=True)
class RenderOptions:
    repo: Repository
    out: Path | None
    environments: tuple[str, ...]
    check: bool
    verify: bool
    crds: tuple[Path, ...]
    incremental: bool = False
    fmt: str = "text"


def _report_render(result: RenderResult, check: bool) -> None:
    diffs = result.changes.differences
    if check:
        for d in diffs:
            echo_err(f"error: {d.describe(result.label)}")
        if diffs:
            return
        click.echo(f"ok: {result.label}/ is up to date ({result.changes.unchanged} files)")
        return
    written = result.written
    assert written is not None
    # a first render of a big repository writes tens of thousands of files: name them only when few
    if len(written.written) + len(written.removed) <= MAX_LISTED:
        for path in written.written:
            click.echo(f"wrote {result.label}/{path}")
        for path in written.removed:
            click.echo(f"removed {result.label}/{path}")
    click.echo(
        f"{result.label}/: {len(written.written)} file(s) written, {len(written.removed)} removed, "
        f"{written.unchanged} unchanged ({result.rendered_units} unit(s) rendered, {result.reused_units} unchanged since the last render)"
    )


def _report_verify(report: VerifyReport) -> None:
    for finding in report.findings:
        echo_err(f"error: {finding}")
    for kind, count in sorted(report.unchecked.items()):
        echo_err(f"note: {count} {kind} object(s) not schema-checked (no schema; pass --crds DIR with its CRD)")
    if report.ok:
        click.echo(
            f"verified: {len(report.built)} kustomization(s) built with {report.tool}, "
            f"{report.validated} of {report.objects} object(s) valid against their schemas"
        )


def _render_json(result: RenderResult, verify: VerifyReport | None) -> dict[str, object]:
    written = result.written
    doc: dict[str, object] = {
        "ok": not result.changes.differences if written is None else True,
        "renderRoot": result.label,
        "endpoints": result.endpoints,
        "renderedUnits": result.rendered_units,
        "reusedUnits": result.reused_units,
    }
    if written is None:
        doc["unchanged"] = result.changes.unchanged
        doc["differences"] = [{"path": f"{result.label}/{d.path}", "status": d.status, "message": d.describe(result.label)} for d in result.changes.differences]
    else:
        doc.update(written=[f"{result.label}/{p}" for p in written.written], removed=[f"{result.label}/{p}" for p in written.removed], unchanged=written.unchanged)
    if verify is not None:
        doc["ok"] = bool(doc["ok"]) and verify.ok
        doc["verify"] = {
            "tool": verify.tool, "kustomizations": verify.built, "objects": verify.objects, "valid": verify.validated,
            "notChecked": dict(sorted(verify.unchecked.items())), "findings": [finding_dict(f) for f in verify.findings],
        }
    return doc


def execute(options: RenderOptions) -> int:
    if not options.repo.root.is_dir():
        raise UsageError(f"{options.repo.root} is not a directory")
    require_repository(options.repo)
    result = render_repository(RenderRequest(options.repo, options.out, options.environments, options.check, options.incremental))
    if options.fmt == "json":
        verify = verify_render(result.render_dir, result.label, crds=crd_directories(list(options.crds))) if options.verify and not (options.check and result.changes.differences) else None
        doc = _render_json(result, verify)
        print_json(doc)
        if not doc["ok"]:
            click.get_current_context().exit(1)
        return 0
    _report_render(result, options.check)
    if options.check and result.changes.differences:
        n = len(result.changes.differences)
        raise CheckFailed(
            f"{result.label}/ is stale: {n} file(s) differ from what `gitops-ml render` writes",
            hint="run `gitops-ml render` and commit the result; never edit rendered files by hand",
        )
    if options.verify:
        report = verify_render(result.render_dir, result.label, crds=crd_directories(list(options.crds)))
        _report_verify(report)
        if not report.ok:
            raise CheckFailed(f"{len(report.findings)} problem(s) in the rendered manifests")
    return 0


@click.command("render")
@repository_options(positional=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Render root to use instead of the repository's renderRoot.")
@click.option("--env", "environments", multiple=True, metavar="ENV", help="Render only this environment (repeatable); others are left as they are.")
@click.option(
    "--check", is_flag=True,
    help="Write nothing; re-render everything and exit 1 listing every stale, missing or extra file (the CI gate).",
)
@click.option(
    "--incremental", is_flag=True,
    help="Fast path for pre-commit hooks and local use: reuse units whose input key the committed render index "
    "(<render root>/.gitops-ml-render.json) records, and compare their files with its hashes. It trusts that "
    "index, which a commit can edit: CI must run the full --check.",
)
@click.option("--verify", is_flag=True, help="Build every kustomization with Kustomize and validate the objects against the schemas of Kubernetes 1.30, the oldest the rendered objects run on.")
@click.option(
    "--crds", multiple=True, type=click.Path(file_okay=False, exists=True, path_type=Path), metavar="DIR",
    help="Directory of CustomResourceDefinitions (Argo CD, Flux) to validate engine objects with under --verify; default $GITOPS_ML_CRDS.",
)
@FORMAT_OPTION
def command(
    repo: Repository, out: Path | None, environments: tuple[str, ...], check: bool, incremental: bool, verify: bool, crds: tuple[Path, ...],
    fmt: str,
) -> None:
    """Render Kustomize bases, overlays and the Argo CD / Flux objects of REPO (default: .).

    Exits 0 when done (or up to date under --check), 1 when the render is stale or invalid.
    """
    with handle_errors():
        execute(RenderOptions(repo, out, environments, check, verify, crds, incremental, fmt))

"""`gitops-ml render`: write the render root, or with --check compare it, and with --verify build it."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from gitops_ml.cli._common import (
    FORMAT_OPTION,
    echo_err,
    finding_dict,
    handle_errors,
    in_ci,
    print_json,
    progress_line,
    repository_options,
    require_repository,
)
from gitops_ml.errors import CheckFailed, UsageError
from gitops_ml.render.service import RenderRequest, RenderResult, render_repository
from gitops_ml.render.verify import VerifyProgress, VerifyReport, crd_directories, verify_render
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
    tally = report.tally
    not_checked = sum(tally.unchecked.values())
    for kind, count in sorted(tally.unchecked.items()):
        echo_err(f"note: {count} {kind} object(s) not checked: no schema for this kind (add its CRD with --crds DIR)")
    for why, count in sorted(tally.rules_skipped.items()):
        echo_err(f"note: {count} CEL validation rule evaluation(s) skipped: {why}")
    if report.ok:
        built = len(report.built) - report.cached
        how = f"built with {report.tool}" if not report.cached else f"{built} built with {report.tool}, {report.cached} unchanged since a clean verify"
        rules = f", {tally.rules_evaluated} CEL rule evaluation(s) passed" if tally.rules_evaluated else ""
        unchecked = f"; {not_checked} not checked (no schema for their kind, listed above)" if not_checked else ""
        click.echo(
            f"verified: {len(report.built)} kustomization(s) {how}; "
            f"{report.validated} object(s) valid against their schemas{rules}{unchecked}"
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


class _VerifyProgress:
    """A rich progress bar on a terminal; in CI or when stderr is not a terminal, a plain line at every
    tenth of the way (long runs must show life without flooding logs)."""

    def __init__(self) -> None:
        self.rich = sys.stderr.isatty() and not in_ci()
        self._bar: Any = None
        self._task: Any = None
        self._said = -1

    def __enter__(self) -> "_VerifyProgress":
        if self.rich:
            from rich.console import Console  # noqa: PLC0415 - only terminals need rich
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

            self._bar = Progress(TextColumn("verify"), BarColumn(), MofNCompleteColumn(), TextColumn("kustomizations"),
                                 TimeElapsedColumn(), console=Console(stderr=True), transient=True)
            self._bar.__enter__()
        return self

    def __call__(self, state: VerifyProgress) -> None:
        if self._bar is not None:
            if self._task is None:
                self._task = self._bar.add_task("verify", total=state.total)
            self._bar.update(self._task, completed=state.done)
            return
        tenth = state.done * 10 // max(state.total, 1)
        if state.total >= 20 and tenth > self._said and state.done:
            self._said = tenth
            cached = f" ({state.cached} unchanged)" if state.cached else ""
            progress_line(f"verify: {state.done}/{state.total} kustomizations{cached}")

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


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
        with _VerifyProgress() as progress:
            report = verify_render(result.render_dir, result.label, crds=crd_directories(list(options.crds)), progress=progress)
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
@click.option(
    "--verify", is_flag=True,
    help="Build every kustomization with Kustomize and validate every object: built-in kinds against the Kubernetes "
    "1.30 schemas (the oldest Kubernetes the rendered objects run on), Argo CD, Flux, Gateway API, External Secrets, Argo Rollouts, KEDA and Prometheus Operator "
    "objects against the CRD schemas gitops-ml ships.",
)
@click.option(
    "--crds", multiple=True, type=click.Path(file_okay=False, exists=True, path_type=Path), metavar="DIR",
    help="Directory of CustomResourceDefinition files to add to (or override) the shipped CRD schemas under --verify; default $GITOPS_ML_CRDS.",
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

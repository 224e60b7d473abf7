"""`gitops-ml build`: one image per model version, tagged with the reference `render` writes."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from gitops_ml.build.plan import BuildOptions, ImageResult
from gitops_ml.build.service import build_images
from gitops_ml.cli._common import (
    handle_errors,
    in_ci,
    print_json,
    progress_line,
    repository_options,
    require_repository,
)
from gitops_ml.errors import UsageError
from gitops_ml.repo.handle import Repository
from gitops_ml.types import ModelName, Version
from gitops_ml.validate.rules import require_specs


@dataclass(frozen=True)
class BuildRequest:
    repo: Repository
    options: BuildOptions
    fmt: str


def execute(request: BuildRequest, progress: Callable[[str], None]) -> list[ImageResult]:
    if not request.repo.root.is_dir():
        raise UsageError(f"{request.repo.root} is not a directory")
    require_repository(request.repo)
    specs = require_specs(request.repo, "the repository does not validate; run `gitops-ml validate`")
    unknown = [m for m in request.options.models if m not in specs.models]
    if unknown:
        raise UsageError(f"unknown model(s): {', '.join(unknown)} (known: {', '.join(sorted(specs.models))})")
    return build_images(request.repo, specs, request.options, progress)


class _Progress:
    """Plain lines in CI or when stderr is not a terminal; a rich status line on a terminal."""

    def __init__(self) -> None:
        self.rich = sys.stderr.isatty() and not in_ci()
        self._status: Any = None

    def __call__(self, line: str) -> None:
        if self._status is None:
            progress_line(line)
            return
        # steps and layer events stay on screen; noisy intermediate lines only update the status
        if line.split(": ", 1)[-1].startswith(("warning:", "Step ", "pushed", "pushing", "building", "resolving", "fetching", "Successfully")):
            self._status.console.print(line, markup=False, highlight=False)
        self._status.update(line[:120])

    def __enter__(self) -> "_Progress":
        if self.rich:
            from rich.console import Console  # noqa: PLC0415 - only terminals need rich

            self._status = Console(stderr=True).status("starting")
            self._status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(None, None, None)


def _result_dict(r: ImageResult) -> dict[str, object]:
    return dataclasses.asdict(r)


@click.command("build")
@repository_options(positional=True)
@click.option("--model", "models", multiple=True, metavar="M", help="Build only this model (repeatable; default: all).")
@click.option("--version", "version", metavar="V", help="Build this version of --model from git history (default: the working tree's).")
@click.option("--push", is_flag=True, help="Push to the registry; a reference already there is neither rebuilt nor pushed.")
@click.option("--registry", envvar="GITOPS_ML_REGISTRY", metavar="R", help="Registry to use instead of image.registry in gitops-ml.yaml (changes the image reference).")
@click.option("--base-image", envvar="GITOPS_ML_BASE_IMAGE", metavar="IMAGE", help="Base image instead of the repository's and manifests' (changes the image reference).")
@click.option("--context-only", type=click.Path(file_okay=False, path_type=Path), metavar="DIR", help="Write DIR/<model>/ build contexts (for docker/build-push-action) instead of building.")
@click.option("--rebuild", is_flag=True, help="Build and push even when the reference already exists (e.g. after changing gitops-ml itself).")
@click.option("--no-cache", is_flag=True, help="Like --rebuild, and without the Docker engine's layer cache.")
@click.option("--allow-dirty", is_flag=True, help="With --push, push a model whose files differ from HEAD (its revision label gets -dirty).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="json prints one object per model on stdout.")
def command(
    repo: Repository, models: tuple[str, ...], version: str | None, push: bool, registry: str | None, base_image: str | None,
    context_only: Path | None, rebuild: bool, no_cache: bool, allow_dirty: bool, fmt: str,
) -> None:
    """Build one image per model of REPO (default: .) through the Docker engine.

    Images carry the content-addressed reference that `gitops-ml render` writes, so an unchanged
    model is never rebuilt. The model's lock (`gitops-ml lock`) is installed on this machine with
    every hash checked, each layer is written here, reproducibly, and the image is loaded into the
    engine; --push also pushes its SBOM and provenance next to it (OCI referrers).
    """
    with handle_errors():
        if version and len(models) != 1:
            raise UsageError("--version needs exactly one --model")
        try:
            parsed = Version.parse(version) if version else None
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        options = BuildOptions(
            models=tuple(ModelName(m) for m in models), version=parsed, registry=registry or "",
            base_image=base_image or "", push=push, context_only=context_only, rebuild=rebuild, no_cache=no_cache,
            allow_dirty=allow_dirty,
        )
        with _Progress() as progress:
            results = execute(BuildRequest(repo, options, fmt), progress)
        if fmt == "json":
            print_json({"images": [_result_dict(r) for r in results]})
            return
        for r in results:
            for line in _summary(r):
                click.echo(line)


def _summary(r: ImageResult) -> Iterator[str]:
    if r.status == "context":
        yield f"{r.model}@{r.version}: context {r.context} for {r.ref}"
        return
    what = {"built": "built", "exists": "unchanged"}[r.status]
    if r.pushed:
        what += f", pushed {r.layers_pushed} layer(s), {r.bytes_pushed} bytes"
    yield f"{r.model}@{r.version}: {r.ref} ({what}, {r.seconds:.1f} s)"
    if r.digest:
        yield f"  digest {r.digest}"

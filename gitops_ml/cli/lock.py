"""`gitops-ml lock [MODEL]`: a hashed lock of each model's dependencies for its image's platform and Python."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import click

from gitops_ml.build.lock import LockResult, lock_models
from gitops_ml.cli._common import (
    FORMAT_OPTION,
    handle_errors,
    print_json,
    progress_line,
    repository_options,
    require_repository,
)
from gitops_ml.errors import UsageError, ValidationError
from gitops_ml.repo.handle import Repository
from gitops_ml.types import ModelName
from gitops_ml.validate.rules import validate_repository


@dataclass(frozen=True)
class LockRequest:
    repo: Repository
    models: tuple[ModelName, ...]


def execute(request: LockRequest, progress: Callable[[str], None]) -> list[LockResult]:
    from gitops_ml.adapters.artifacts import cache_root  # noqa: PLC0415 - the one cache every build shares

    # a stale lock is a finding of its own: it must not stop the command that rewrites it
    report = validate_repository(request.repo)
    if report.specs is None:
        errors = [f for f in report.findings if f.severity == "error"]
        raise ValidationError(errors, "the repository does not validate; run `gitops-ml validate`")
    unknown = [m for m in request.models if m not in report.specs.models]
    if unknown:
        raise UsageError(f"unknown model(s): {', '.join(unknown)} (known: {', '.join(sorted(report.specs.models))})")
    return lock_models(request.repo, report.specs, request.models, cache_root(), progress)


@click.command("lock")
@click.argument("models", nargs=-1, metavar="[MODEL]...")
@repository_options()
@FORMAT_OPTION
def command(models: tuple[str, ...], repo: Repository, fmt: str) -> None:
    """Resolve each MODEL's requirements (all models when none is named) and the scoring server's own
    for the image's Python and Linux platform into a lock with sha256 hashes, written beside them
    (requirements.lock, named in manifest.yaml as dependencies.lock).

    `build` installs exactly the lock, every hash checked, and `validate` reports a lock older than
    its requirements. Commit it: it is part of the version's content, so the image tag covers it.
    """
    with handle_errors():
        require_repository(repo)
        results = execute(LockRequest(repo, tuple(ModelName(m) for m in models)), progress_line)
        if fmt == "json":
            print_json({"locks": [{"model": r.model, "path": r.path, "packages": r.packages, "changed": r.changed,
                                   "manifestEdited": r.manifest_edited} for r in results]})
            return
        for r in results:
            what = "written" if r.changed else "unchanged"
            edited = "; manifest.yaml now names it (dependencies.lock)" if r.manifest_edited else ""
            click.echo(f"{r.model}: {r.path} {what}, {r.packages} packages with hashes{edited}")

"""The use case behind `gitops-ml build`: plan every requested model, check them all before any
build starts, then build and push (or write contexts).
"""

from __future__ import annotations

import ast
import dataclasses
import posixpath
from typing import TYPE_CHECKING, Sequence

from gitops_ml.adapters.docker import DockerEngine
from gitops_ml.build.context import write_contexts
from gitops_ml.build.dirty import REVISION_LABEL, _dirty_list, current_revision, listing, mark_dirty, source_date
from gitops_ml.build.image import build_image
from gitops_ml.build.plan import BuildOptions, ImagePlan, ImageResult, Progress, plan_images
from gitops_ml.build.requirements import requirements_of
from gitops_ml.errors import (
    Location,
    RegistryError,
    ValidationError,
)
from gitops_ml.repo.handle import Repository
from gitops_ml.types import Finding
from gitops_ml.validate.specs import Specs

if TYPE_CHECKING:
    pass


def check_plan(plans: Sequence[ImagePlan]) -> None:
    """Compile every Python file of the scoring code and read the dependency list, for all plans.

    Raises ValidationError with every finding (file:line:col) so that nothing fails later inside
    a container build where the message would be buried in build output.
    """
    findings: list[Finding] = []
    for plan in plans:
        for rel, data in sorted(plan.version.files().items()):
            if rel.endswith(".py"):
                path = f"{plan.model_dir}/{rel}"
                try:
                    ast.parse(data, filename=path)
                except SyntaxError as exc:
                    findings.append(Finding(Location(path, exc.lineno or 1, exc.offset or 1), f"syntax error: {exc.msg}"))
        try:
            requirements_of(plan)
        except ValidationError as exc:
            findings.extend(f for f in exc.findings if isinstance(f, Finding))
    if findings:
        # the command line prints the error's hint, not each finding's: say how to proceed once per kind
        hint = "; ".join(dict.fromkeys(f.hint for f in findings if f.hint))
        error = ValidationError(findings, f"{len(findings)} problem(s) in the scoring code or its dependencies")
        error.hint = hint
        raise error


def _with_source_date(repository: Repository, plan: ImagePlan) -> ImagePlan:
    when = source_date(repository, plan.labels.get(REVISION_LABEL, ""))
    return dataclasses.replace(plan, created=when) if when is not None else plan


def build_images(repository: Repository, specs: Specs, options: BuildOptions, progress: Progress) -> list[ImageResult]:
    """The use case behind `gitops-ml build`: plan, check, then build/push (or write contexts).

    A push of a model whose files differ from HEAD is refused (RegistryError) unless allow_dirty;
    otherwise such a model is built with a warning and a `<sha>-dirty` revision label.
    """
    plans = mark_dirty(repository, plan_images(repository, specs, options, revision=current_revision(repository)))
    plans = [_with_source_date(repository, plan) for plan in plans]
    dirty = [plan for plan in plans if plan.dirty]
    if options.push and dirty and not options.allow_dirty and options.context_only is None:
        raise RegistryError(
            "; ".join(f"model {plan.model}: {_dirty_list(plan.dirty)} from HEAD" for plan in dirty)
            + ": the pushed image would carry code no commit holds, under a tag the committed deploy/ does not reference",
            hint="commit the changes first (CI builds from the commit), or pass --allow-dirty to push anyway",
        )
    stray = [(plan, _unreferenced(plan)) for plan in plans if plan.untracked]
    stray = [(plan, paths) for plan, paths in stray if paths]
    if options.context_only is not None and stray and not options.allow_dirty:
        # contexts are for images built elsewhere (docker/build-push-action) and published: an
        # untracked .env or keys/ directory that nothing refers to must not travel with them
        raise RegistryError(
            "; ".join(f"model {plan.model}: {listing(paths)} {'is' if len(paths) == 1 else 'are'} neither tracked by git nor named by the manifest"
                      for plan, paths in stray)
            + ": a build context would carry them into the image",
            hint="commit them if they belong to the model, add them to .gitignore (ignored files never enter a context), "
                 "or pass --allow-dirty to include them",
        )
    for plan in dirty:
        progress(f"{plan.model}: warning: {_dirty_list(plan.dirty)} from HEAD; the image is labelled revision "
                 f"{plan.labels.get(REVISION_LABEL, '(none)')} and its tag is not the one the committed deploy/ references")
    check_plan(plans)
    if options.context_only is not None:
        results = write_contexts(plans, options.context_only, progress, options.cache)
    else:
        engine = DockerEngine.connect()
        try:
            results = [build_image(engine, plan, options, progress) for plan in plans]
        finally:
            engine.close()
    for plan, result in zip(plans, results):
        result.dirty = list(plan.dirty)
    return results


def _unreferenced(plan: ImagePlan) -> list[str]:
    """Untracked files of the model that neither the manifest nor the artifact names."""
    entry = plan.version.entry
    named = {posixpath.normpath(f"{entry.dir}/{rel}") for rel in entry.manifest.referenced_paths().values()}
    if entry.spec.artifact.scheme == "path":
        named.add(posixpath.normpath(f"{entry.dir}/{entry.spec.artifact.uri}"))
    return [path for path in plan.untracked if not any(path == n or path.startswith(n + "/") for n in named)]

"""Images built and pushed through adapters.docker; an image whose content tag already exists is
not rebuilt.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_ml.adapters.docker import DockerEngine
from gitops_ml.build.context import _cache_root, _prefixed, prepare_context
from gitops_ml.build.plan import BuildOptions, ImagePlan, ImageResult, Progress
from gitops_ml.errors import (
    DockerError,
)

if TYPE_CHECKING:
    pass


def ensure_base_image(engine: DockerEngine, base: str) -> None:
    """Fail early, with a hint, when the base image is neither local nor in its registry."""
    if engine.local_image_id(base):
        return
    try:
        remote = engine.remote_digest(base)
    except DockerError as exc:
        raise DockerError(f"base image {base} is not on this machine and its registry cannot be asked: {exc.message}", hint=BASE_HINT) from exc
    if remote is None:
        raise DockerError(f"base image {base} does not exist (not on this machine, not in its registry)", hint=BASE_HINT)


BASE_HINT = (
    "set image.baseImage in gitops-ml.yaml (or pass --base-image) to an image with python3 and python3-venv; "
    "offline, `bash .ci/setup-docker.sh` makes gitops-ml-base:bookworm with mmdebstrap"
)


def build_image(engine: DockerEngine, plan: ImagePlan, options: BuildOptions, progress: Progress) -> ImageResult:
    """Build (unless the reference already exists) and push one image."""
    started = time.perf_counter()
    result = ImageResult(plan.model, str(plan.version.version), plan.ref, "built")
    say = _prefixed(progress, plan.model)
    if options.push and not (options.rebuild or options.no_cache):
        remote = engine.remote_digest(plan.ref)
        if remote:
            result.status, result.digest = "exists", remote
            result.seconds = time.perf_counter() - started
            say(f"{plan.ref} is already in the registry ({remote}); nothing to build or push")
            return result
    local = None if options.rebuild or options.no_cache else engine.local_image_id(plan.ref)
    if local:
        result.status, result.image_id = "exists", local
        say(f"{plan.ref} already built ({local[:19]})")
    else:
        ensure_base_image(engine, plan.base_image)
        cache = options.cache or _cache_root()
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"gitops-ml-build-{plan.model}-") as tmp:
            result.timings = prepare_context(plan, Path(tmp) / "context", cache, say)
            step = time.perf_counter()
            say(f"building {plan.ref}")
            result.image_id = engine.build(Path(tmp) / "context", plan.ref, progress=say, nocache=options.no_cache)
            result.timings["build"] = time.perf_counter() - step
    if options.push:
        step = time.perf_counter()
        say(f"pushing {plan.ref}")
        report = engine.push(plan.ref, progress=say)
        result.timings["push"] = time.perf_counter() - step
        result.pushed = True
        result.digest = report.digest or engine.repo_digest(plan.ref)
        result.bytes_pushed, result.layers_pushed = report.bytes_pushed, report.layers_pushed
    result.seconds = time.perf_counter() - started
    return result

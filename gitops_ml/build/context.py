"""Build contexts: the artifact fetched and verified, the wheelhouse, the runtime and the model's
files written with fixed times; `--context-only` writes them all or nothing.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from gitops_ml.build.dockerfile import render_dockerfile
from gitops_ml.build.plan import ImagePlan, ImageResult, Progress
from gitops_ml.build.wheelhouse import CONTEXT_MTIME, resolve_wheelhouse, runtime_wheel
from gitops_ml.errors import (
    ConfigError,
    Location,
)

if TYPE_CHECKING:
    pass


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, 0o644)


def _fix_times(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (CONTEXT_MTIME, CONTEXT_MTIME), follow_symlinks=False)
        os.chmod(dirpath, 0o755)
    os.utime(root, (CONTEXT_MTIME, CONTEXT_MTIME))


def fetch_artifact(plan: ImagePlan, cache: Path, progress: Progress) -> Path:
    from gitops_ml.adapters import artifacts  # noqa: PLC0415 - imports httpx
    spec = plan.version.entry.spec
    where = Location(f"{plan.model_dir}/model.yaml")
    request = artifacts.ArtifactRequest(str(plan.model), spec.artifact, where, plan.version.files())
    return artifacts.fetch_artifact(request, cache=cache, progress=progress)


def write_context(plan: ImagePlan, dest: Path, *, wheelhouse: Path, runtime: Path, artifact: Path) -> None:
    """Lay out the build context in dest (which must not exist yet).

    model/code holds the scoring code and data files; model/artifact holds model.yaml and the
    artifact, so a retrained model changes only the last layer.
    """
    spec = plan.version.entry.spec
    artifact_rel = posixpath.normpath(spec.artifact.path)
    artifact_src = posixpath.normpath(spec.artifact.uri) if spec.artifact.scheme == "path" else None
    dest.mkdir(parents=True)
    _put(dest / "Dockerfile", render_dockerfile(plan).encode("utf-8"))
    _put(dest / ".dockerignore", b"# the context holds only what the image needs\n")
    for wheel in sorted(wheelhouse.glob("*.whl")):
        _put(dest / "wheels" / "dependencies" / wheel.name, wheel.read_bytes())
    _put(dest / "wheels" / "runtime" / runtime.name, runtime.read_bytes())
    for rel, data in sorted(plan.version.files().items()):
        if rel in (artifact_src, artifact_rel):
            continue
        layer = "artifact" if rel == "model.yaml" else "code"
        _put(dest / "model" / layer / rel, data)
    _put(dest / "model" / "artifact" / artifact_rel, artifact.read_bytes())
    _fix_times(dest)


def prepare_context(plan: ImagePlan, dest: Path, cache: Path, progress: Progress) -> dict[str, float]:
    """Fetch, resolve and write everything the build needs into dest; seconds per step."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    artifact = fetch_artifact(plan, cache, progress)
    timings["artifact"] = time.perf_counter() - start
    start = time.perf_counter()
    wheelhouse = resolve_wheelhouse(plan, cache, progress)
    runtime = runtime_wheel(cache, progress)
    timings["wheelhouse"] = time.perf_counter() - start
    start = time.perf_counter()
    write_context(plan, dest, wheelhouse=wheelhouse, runtime=runtime, artifact=artifact)
    timings["context"] = time.perf_counter() - start
    return timings


def write_contexts(plans: Sequence[ImagePlan], out: Path, progress: Progress, cache: Path | None = None) -> list[ImageResult]:
    """--context-only: one directory per model under out, all of them or none.

    Every target is checked before anything is written, the contexts are prepared in a temporary
    sibling and moved into place only when all of them are ready; a failure leaves out as it was
    (and does not leave out behind when this call created it).
    """
    cache = cache or _cache_root()
    taken = [str(out / plan.model) for plan in plans if (out / plan.model).exists() or (out / plan.model).is_symlink()]
    if taken:
        raise ConfigError(f"{', '.join(taken)} already exist{'s' if len(taken) == 1 else ''}; remove {'it' if len(taken) == 1 else 'them'} or choose another --context-only directory")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".gitops-ml-contexts-"))
    results, moved = [], []
    try:
        for plan in plans:
            timings = prepare_context(plan, staging / plan.model, cache, _prefixed(progress, plan.model))
            results.append(ImageResult(plan.model, str(plan.version.version), plan.ref, "context", context=str(out / plan.model), timings=timings))
        for plan in plans:
            os.rename(staging / plan.model, out / plan.model)  # a non-empty directory that appeared meanwhile makes this fail, never merges
            moved.append(out / plan.model)
    except BaseException:
        for path in moved:
            shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    for plan in plans:
        progress(f"{plan.model}: wrote {out / plan.model} (docker build -t {plan.ref} {out / plan.model})")
    return results


def _cache_root() -> Path:
    from gitops_ml.adapters.artifacts import cache_root  # noqa: PLC0415

    return cache_root()


def _prefixed(progress: Progress, model: str) -> Progress:
    return lambda line: progress(f"{model}: {line}")

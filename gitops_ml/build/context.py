"""What an image is made of, prepared on the build host: the artifact fetched and verified, the lock
installed, every layer written (see layers.py); `--context-only` writes them with a Dockerfile, all
contexts or none.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from gitops_ml.adapters.uv import UvFailed
from gitops_ml.build.dockerfile import render_dockerfile
from gitops_ml.build.layers import (
    CONTEXT_MTIME,
    SBOM_PATH,
    Entry,
    Layer,
    copy_layer,
    dependency_layer,
    directories,
    files_layer,
    runtime_layer,
    write_layer,
)
from gitops_ml.build.lock import plan_lock
from gitops_ml.build.plan import ImagePlan, ImageResult, Progress
from gitops_ml.build.sbom import SbomInputs, render_sbom
from gitops_ml.build.wheelhouse import runtime_wheel
from gitops_ml.errors import ArtifactError, ConfigError, ExternalToolError, GitopsMlError, Location
from gitops_ml.validate.locks import Lock


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


@dataclass
class Prepared:
    """Everything an image is made of, on the build host: the lock, the layer tars (dependencies,
    runtime, code, artifact with the SBOM), the SBOM's bytes and seconds per step."""

    lock: Lock
    layers: list[Layer]
    sbom: bytes
    runtime_sha256: str
    timings: dict[str, float] = field(default_factory=dict)


def prepare_layers(plan: ImagePlan, work: Path, cache: Path, progress: Progress, *, base_id: str = "", created: int = CONTEXT_MTIME) -> Prepared:
    """Fetch and verify the artifact, read (or resolve) the lock, install it and write every layer."""
    from gitops_ml import __version__  # noqa: PLC0415
    from gitops_ml.serving.settings import MODEL_DIR  # noqa: PLC0415 - the serving package imports numpy

    timings: dict[str, float] = {}
    start = time.perf_counter()
    artifact = fetch_artifact(plan, cache, progress)
    timings["artifact"] = time.perf_counter() - start
    start = time.perf_counter()
    lock = plan_lock(plan, cache, progress)
    timings["lock"] = time.perf_counter() - start
    start = time.perf_counter()
    progress(f"installing {len(lock.packages)} locked packages (hashes checked)")
    try:
        dependencies = dependency_layer(lock, plan.python, cache)
    except UvFailed as exc:
        raise lock_install_error(plan, lock, exc) from exc
    wheel = runtime_wheel(cache, progress)
    runtime = runtime_layer(wheel, cache)
    timings["dependencies"] = time.perf_counter() - start
    start = time.perf_counter()
    spec = plan.version.entry.spec
    artifact_rel = posixpath.normpath(spec.artifact.path)
    artifact_src = posixpath.normpath(spec.artifact.uri) if spec.artifact.scheme == "path" else None
    code = {rel: data for rel, data in sorted(plan.version.files().items()) if rel not in (artifact_src, artifact_rel, "model.yaml")}
    runtime_sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    sbom = render_sbom(SbomInputs(
        model=str(plan.model), version=str(plan.version.version), image=str(plan.ref), lock=lock, runtime_version=__version__,
        runtime_sha256=runtime_sha, artifact_uri=spec.artifact.uri, artifact_path=f"{MODEL_DIR}/{artifact_rel}",
        artifact_sha256=spec.artifact.sha256, base_image=plan.base_image, base_id=base_id, created=created,
    ))
    last = [Entry(f"{MODEL_DIR.strip('/')}/model.yaml", plan.version.files()["model.yaml"]),
            Entry(f"{MODEL_DIR.strip('/')}/{artifact_rel}", artifact), Entry(SBOM_PATH.strip("/"), sbom)]
    last += [Entry(p, None) for p in {d for e in last for d in _parents_of(e.path)}]
    layers = [
        dependencies,
        runtime,
        files_layer("code", code, MODEL_DIR, work / "code.tar"),
        write_layer("artifact", [*directories(MODEL_DIR), *last], work / "artifact.tar"),
    ]
    timings["layers"] = time.perf_counter() - start
    return Prepared(lock, layers, sbom, runtime_sha, timings)


def _parents_of(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts)) if "/".join(parts[: i + 1]).startswith("opt/gitops-ml")]


def lock_install_error(plan: ImagePlan, lock: Lock, exc: UvFailed) -> GitopsMlError:
    """uv's refusal to install a lock, located at the lock's entry it names (a hash mismatch above all)."""
    output = exc.output
    named = re.search(r"[Hh]ash mismatch for `?([A-Za-z0-9._-]+)(?:==([^`\s]+))?", output)
    where = Location(lock.path, 1, 1)
    if named:
        package = lock.package(named.group(1))
        if package is not None:
            where = Location(lock.path, package.line, 1)
        detail = " ".join(line.strip() for line in output[named.start():].splitlines() if line.strip())[:600]
        return ArtifactError(f"model {plan.model}: a downloaded file does not match the lock: {detail}", location=where,
                             hint="the lock's hashes are what was resolved; if the index really changed the file, "
                                  f"review why and run `gitops-ml lock {plan.model}` again")
    tail = " ".join(output.strip().splitlines()[-4:])
    return ExternalToolError(f"model {plan.model}: installing the lock failed: {tail}", location=where,
                             hint="uv on the build host must reach the package index (UV_INDEX_URL or PIP_INDEX_URL; proxies and SSL_CERT_FILE are honoured)")


def write_context(plan: ImagePlan, dest: Path, prepared: Prepared) -> None:
    """Lay out a build context in dest (which must not exist yet): the Dockerfile and the layer tars it ADDs."""
    dest.mkdir(parents=True)
    _put(dest / "Dockerfile", render_dockerfile(plan).encode("utf-8"))
    _put(dest / ".dockerignore", b"# the context holds only what the image needs\n")
    for layer in prepared.layers:
        copy_layer(layer, dest / "layers" / f"{layer.name}.tar")
    _fix_times(dest)


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
            work = staging / f".{plan.model}-work"
            work.mkdir()
            prepared = prepare_layers(plan, work, cache, _prefixed(progress, plan.model))
            write_context(plan, staging / plan.model, prepared)
            shutil.rmtree(work)
            timings = prepared.timings
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

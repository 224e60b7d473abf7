"""Images built from layer tars, loaded and pushed through adapters.docker, with the SBOM and the
provenance pushed next to them as OCI referrers; an image whose content tag already exists is not rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_ml import __version__
from gitops_ml.adapters.docker import DockerEngine
from gitops_ml.build.assemble import image_config, image_settings, inspect_base, load_image
from gitops_ml.build.context import _cache_root, _prefixed, prepare_layers
from gitops_ml.build.dirty import REVISION_LABEL
from gitops_ml.build.layers import SBOM_PATH, system_layer
from gitops_ml.build.plan import BuildOptions, ImagePlan, ImageResult, Progress
from gitops_ml.build.provenance import MEDIA_TYPE as PROVENANCE_MEDIA_TYPE
from gitops_ml.build.provenance import ProvenanceInputs, render_provenance
from gitops_ml.build.sbom import MEDIA_TYPE as SBOM_MEDIA_TYPE
from gitops_ml.errors import DockerError, Location

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
    "with no registry at hand, make one from Debian: `mmdebstrap --variant=apt --include=python3 bookworm base.tar "
    "&& docker import base.tar python-base:bookworm`"
)


def build_image(engine: DockerEngine, plan: ImagePlan, options: BuildOptions, progress: Progress) -> ImageResult:
    """Build (unless the reference already exists), load into the engine, push, and attach the SBOM and
    the provenance to the pushed image."""
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
    cache = options.cache or _cache_root()
    cache.mkdir(parents=True, exist_ok=True)
    where = Location(f"{plan.model_dir}/manifest.yaml")
    sbom: bytes | None = None
    lock_sha = ""
    if local:
        result.status, result.image_id = "exists", local
        say(f"{plan.ref} already built ({local[:19]})")
    else:
        ensure_base_image(engine, plan.base_image)
        base = inspect_base(engine, plan.base_image, plan.python, cache, where)
        with tempfile.TemporaryDirectory(dir=cache, prefix=f".build-{plan.model}-") as tmp:
            work = Path(tmp)
            prepared = prepare_layers(plan, work, cache, say, base_id=base.id, created=plan.created)
            result.timings = prepared.timings
            step = time.perf_counter()
            system = system_layer(base.passwd, base.group, base.python_path, plan.python, work / "system.tar")
            layers = [system, *prepared.layers]
            config = image_config(base, image_settings(plan), layers, plan.created, __version__)
            say(f"loading {plan.ref} ({len(layers)} layers above {plan.base_image})")
            result.image_id = load_image(engine, config, base, layers, plan.ref, cache=cache, progress=say)
            result.timings["load"] = time.perf_counter() - step
            sbom, lock_sha = prepared.sbom, prepared.lock.sha256
    if options.push:
        step = time.perf_counter()
        say(f"pushing {plan.ref}")
        report = engine.push(plan.ref, progress=say)
        result.timings["push"] = time.perf_counter() - step
        result.pushed = True
        result.digest = report.digest or engine.repo_digest(plan.ref)
        result.bytes_pushed, result.layers_pushed = report.bytes_pushed, report.layers_pushed
        step = time.perf_counter()
        if sbom is None:  # built earlier: the SBOM is the one inside the image
            sbom = engine.read_image_files(plan.ref, [SBOM_PATH]).get(SBOM_PATH) or b""
            lock_sha = _lock_sha_of(plan)
        if sbom:
            result.referrers = attach_referrers(engine, plan, result.digest, sbom, lock_sha, started=int(time.time() - (time.perf_counter() - started)))
        else:
            say(f"warning: {plan.ref} has no {SBOM_PATH} (built by an older gitops-ml): no SBOM or provenance pushed; "
                "`build --push --rebuild` makes them")
        result.timings["attach"] = time.perf_counter() - step
    result.seconds = time.perf_counter() - started
    return result


def _lock_sha_of(plan: ImagePlan) -> str:
    manifest = plan.version.entry.manifest
    if not manifest.lock:
        return ""
    return hashlib.sha256(plan.version.files()[posixpath.normpath(manifest.lock)]).hexdigest()


def builder_id() -> str:
    """Who built: the GitHub Actions run when there is one (its OIDC identity signs), else this tool on a host."""
    server, repository, run = (os.environ.get(k, "") for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if server and repository and run:
        return f"{server}/{repository}/actions/runs/{run}"
    return f"https://gitops-ml.dev/builders/local/{__version__}"


def attach_referrers(engine: DockerEngine, plan: ImagePlan, digest: str, sbom: bytes, lock_sha: str, *, started: int) -> list[dict[str, str]]:
    """Push the SBOM and the provenance statement as artifacts whose subject is the pushed image."""
    from gitops_ml.adapters import oci  # noqa: PLC0415 - imports ORAS

    host, repository, _ = oci.split_ref(plan.ref)
    registry = oci.Registry(host)
    found = registry.manifest(repository, digest)
    if found is None:
        raise DockerError(f"the registry does not have {plan.ref}@{digest} right after the push")
    subject = found[1]
    spec = plan.version.entry.spec
    base_id = engine.local_image_id(plan.base_image) or ""
    statement = render_provenance(ProvenanceInputs(
        image=f"{host}/{repository}", digest=digest, model=str(plan.model), version=str(plan.version.version),
        content_digest=plan.content_digest, source=plan.labels.get("org.opencontainers.image.source", ""),
        revision=plan.labels.get(REVISION_LABEL, ""), model_dir=plan.model_dir, base_image=plan.base_image, base_id=base_id,
        lock_path=(f"{plan.model_dir}/{posixpath.normpath(plan.version.entry.manifest.lock)}" if plan.version.entry.manifest.lock
                   else f"{plan.model_dir}/requirements.lock (resolved at build time, not committed)"),
        lock_sha256=lock_sha, sbom_sha256=hashlib.sha256(sbom).hexdigest(), builder=builder_id(), runtime_version=__version__,
        started=started, finished=int(time.time()),
    ))
    annotations = {"dev.gitops-ml.model": str(plan.model), "dev.gitops-ml.version": str(spec.version)}
    out = []
    for artifact_type, payload, filename in ((SBOM_MEDIA_TYPE, sbom, "sbom.cdx.json"), (PROVENANCE_MEDIA_TYPE, statement, "provenance.intoto.json")):
        descriptor = registry.push_referrer(repository, subject, artifact_type, payload, artifact_type, filename, annotations)
        out.append({"artifactType": artifact_type, "digest": descriptor.digest, "ref": f"{host}/{repository}@{descriptor.digest}"})
    return out

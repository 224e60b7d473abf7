"""`verify-image`: an image in its registry checked against the version's content in git: its labels,
its tag, the SBOM inside it and next to it, and its provenance statement.

Reads the registry (adapters.oci) and git; never pulls into Docker, never writes, never prints.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import tarfile
import zlib
from dataclasses import dataclass, field
from typing import Any

from gitops_ml.build.layers import SBOM_PATH
from gitops_ml.build.provenance import MEDIA_TYPE as PROVENANCE_MEDIA_TYPE
from gitops_ml.build.provenance import PREDICATE_TYPE
from gitops_ml.build.sbom import MEDIA_TYPE as SBOM_MEDIA_TYPE
from gitops_ml.errors import RegistryError, UsageError
from gitops_ml.registry.imageref import image_tag
from gitops_ml.registry.versions import ModelVersion, resolve_model_version
from gitops_ml.repo.handle import Repository
from gitops_ml.types import ModelName, Version
from gitops_ml.validate import locks
from gitops_ml.validate.specs import Specs


@dataclass(frozen=True)
class Check:
    """One comparison of the image with git: what, whether it held, and the evidence."""

    name: str
    ok: bool
    detail: str


@dataclass
class Verification:
    ref: str
    digest: str = ""
    model: str = ""
    version: str = ""
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))


def verify_image(repository: Repository, specs: Specs, ref: str) -> Verification:
    """Every check that can be made; a failed one does not stop the others."""
    from gitops_ml.adapters import oci  # noqa: PLC0415 - imports ORAS

    host, repo_name, reference = oci.split_ref(ref)
    if not host or not repo_name:
        raise UsageError(f"{ref!r} is not an image reference (REGISTRY/REPOSITORY:TAG or @sha256:...)")
    registry = oci.Registry(host)
    found = registry.manifest(repo_name, reference)
    if found is None:
        raise RegistryError(f"{ref} is not in its registry", hint="push it with `gitops-ml build --push`")
    body, subject = found
    manifest = json.loads(body)
    result = Verification(ref, subject.digest)
    config = json.loads(registry.blob(repo_name, manifest["config"]["digest"]))
    labels: dict[str, str] = dict((config.get("config") or {}).get("Labels") or {})
    result.model, result.version = labels.get("dev.gitops-ml.model", ""), labels.get("dev.gitops-ml.version", "")
    if not result.model or not result.version:
        result.check("labels", False, "the image has no dev.gitops-ml.model/version labels: not built by gitops-ml")
        return result
    try:
        version = resolve_model_version(repository, specs, ModelName(result.model), Version.parse(result.version))
    except (RegistryError, ValueError) as exc:
        result.check("version in git", False, f"{result.model}@{result.version}: {exc}")
        return result
    where = version.commit or "the working tree"
    result.check("version in git", True, f"{result.model}@{result.version} is {version.entry.dir}/ at {where}")
    _check_labels(result, version, labels, reference)
    lock_text = _lock_text(version)
    sbom_inside = _sbom_in_image(registry, repo_name, manifest)
    listed = registry.referrers(repo_name, subject.digest)
    sboms = [d for d in listed.items if d.artifact_type == SBOM_MEDIA_TYPE]
    statements = [d for d in listed.items if d.artifact_type == PROVENANCE_MEDIA_TYPE]
    sbom_bytes = _payload(registry, repo_name, sboms[-1].digest) if sboms else None
    result.check("sbom referrer", sbom_bytes is not None,
                 f"{len(sboms)} CycloneDX referrer(s) via {listed.via}" if sboms else f"no SBOM refers to {subject.digest} (via {listed.via})")
    if sbom_bytes is not None:
        result.check("sbom in image", sbom_inside == sbom_bytes,
                     f"{SBOM_PATH} equals the referrer" if sbom_inside == sbom_bytes else f"{SBOM_PATH} differs from the pushed SBOM or is missing")
        _check_sbom(result, json.loads(sbom_bytes), version, lock_text)
    if statements:
        statement = json.loads(_payload(registry, repo_name, statements[-1].digest))
        _check_provenance(result, statement, subject.digest, version, labels, lock_text, sbom_bytes)
    else:
        result.check("provenance referrer", False, f"no provenance statement refers to {subject.digest} (via {listed.via})")
    return result


def _check_labels(result: Verification, version: ModelVersion, labels: dict[str, str], reference: str) -> None:
    spec = version.entry.spec
    sha = labels.get("dev.gitops-ml.artifact.sha256", "")
    result.check("artifact label", sha == spec.artifact.sha256, f"dev.gitops-ml.artifact.sha256 {sha or '(none)'}; model.yaml says {spec.artifact.sha256}")
    if not reference.startswith("sha256:"):
        digest = _content_digest(version, labels.get("org.opencontainers.image.base.name", ""))
        expected = image_tag(version.version, digest)
        result.check("content tag", reference == expected, f"tag {reference}; the version's content gives {expected}")


def _content_digest(version: ModelVersion, base_image: str) -> str:
    from gitops_ml.registry.imageref import content_digest  # noqa: PLC0415

    manifest = version.entry.manifest
    return content_digest(version.files(), artifact_sha256=version.entry.spec.artifact.sha256,
                          base_image=manifest.base_image or base_image, python=manifest.python)


def _lock_text(version: ModelVersion) -> str:
    rel = version.entry.manifest.lock
    return version.files()[posixpath.normpath(rel)].decode("utf-8") if rel else ""


def _payload(registry: Any, repository: str, digest: str) -> bytes:
    found = registry.manifest(repository, digest)
    if found is None:
        raise RegistryError(f"referrer {digest} is listed but missing from the registry")
    layers = json.loads(found[0]).get("layers") or []
    return bytes(registry.blob(repository, layers[0]["digest"])) if layers else b""


def _sbom_in_image(registry: Any, repository: str, manifest: dict[str, Any]) -> bytes | None:
    """The SBOM file from the image's last layer (the artifact layer), read from the registry."""
    layers = manifest.get("layers") or []
    if not layers:
        return None
    data = registry.blob(repository, layers[-1]["digest"])
    if layers[-1].get("mediaType", "").endswith("gzip"):
        data = zlib.decompress(data, 16 + zlib.MAX_WBITS)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        try:
            member = tar.getmember(SBOM_PATH.strip("/"))
        except KeyError:
            return None
        handle = tar.extractfile(member)
        return handle.read() if handle else None


def _check_sbom(result: Verification, sbom: dict[str, Any], version: ModelVersion, lock_text: str) -> None:
    components = sbom.get("components") or []
    artifact = [c for c in components if c.get("type") == "machine-learning-model"]
    hashes = {h.get("content") for c in artifact for h in c.get("hashes") or []}
    sha = version.entry.spec.artifact.sha256
    result.check("sbom artifact", sha in hashes, f"the SBOM's model artifact has sha256 {', '.join(sorted(h for h in hashes if h)) or '(none)'}; model.yaml says {sha}")
    if not lock_text:
        result.check("sbom packages", False, "the version has no committed lock to compare the SBOM's packages with")
        return
    lock, _ = locks.parse_lock(version.entry.manifest.lock, lock_text)
    locked = {(p.name, p.version, tuple(sorted(h.removeprefix("sha256:") for h in p.hashes))) for p in (lock.packages if lock else ())}
    listed = {(c.get("name"), c.get("version"), tuple(sorted(h.get("content") for h in c.get("hashes") or [])))
              for c in components if str(c.get("purl", "")).startswith("pkg:pypi/") and c.get("name") != "gitops-ml"}
    missing, extra = locked - listed, listed - locked
    result.check("sbom packages", not missing and not extra,
                 f"{len(listed)} packages with versions and hashes equal to the lock's" if not missing and not extra else
                 f"differs from the lock: missing {sorted(m[0] for m in missing)}, not locked {sorted(str(e[0]) for e in extra)}")


def _check_provenance(result: Verification, statement: dict[str, Any], digest: str, version: ModelVersion, labels: dict[str, str],
                      lock_text: str, sbom: bytes | None) -> None:
    subjects = [s.get("digest", {}).get("sha256") for s in statement.get("subject") or []]
    result.check("provenance subject", digest.removeprefix("sha256:") in subjects and statement.get("predicateType") == PREDICATE_TYPE,
                 f"{statement.get('predicateType')} statement about {', '.join(str(s) for s in subjects)}")
    params = (statement.get("predicate") or {}).get("buildDefinition", {}).get("externalParameters", {})
    revision = params.get("source", {}).get("revision", "")
    label = labels.get("org.opencontainers.image.revision", "")
    result.check("provenance revision", bool(revision) and revision == label, f"statement says {revision or '(none)'}; the image's label says {label or '(none)'}")
    content = params.get("model", {}).get("contentDigest", {}).get("sha256", "")
    expected = _content_digest(version, labels.get("org.opencontainers.image.base.name", ""))
    result.check("provenance content", content == expected, f"model content digest {content[:12] or '(none)'}…; git gives {expected[:12]}…")
    resolved = (statement.get("predicate") or {}).get("buildDefinition", {}).get("resolvedDependencies") or []
    digests = {str(d.get("uri", "")): d.get("digest", {}).get("sha256", "") for d in resolved}
    lock_sha = hashlib.sha256(lock_text.encode("utf-8")).hexdigest() if lock_text else ""
    lock_uri = next((u for u in digests if u.endswith(".lock")), "")
    result.check("provenance lock", bool(lock_sha) and digests.get(lock_uri) == lock_sha,
                 f"lock sha256 {digests.get(lock_uri, '(none)')[:12]}…; git gives {lock_sha[:12] or '(no lock)'}…")
    if sbom is not None:
        sbom_sha = hashlib.sha256(sbom).hexdigest()
        result.check("provenance sbom", digests.get("sbom.cdx.json") == sbom_sha, f"the statement names the pushed SBOM ({sbom_sha[:12]}…)")

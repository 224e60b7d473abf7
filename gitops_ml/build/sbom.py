"""The image's SBOM: CycloneDX 1.6 JSON, written with cyclonedx-python-lib, of what the image holds:
the locked Python packages (versions, the hashes the lock accepts), the gitops-ml runtime, the model
artifact with its sha256 and the base image. Deterministic (serial number and time derive from the
inputs), so it never changes an image digest by itself. Pure: no Docker, no registry, no printing.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from gitops_ml.validate.locks import Lock

MEDIA_TYPE = "application/vnd.cyclonedx+json"
SPEC_VERSION = "1.6"
_NAMESPACE = uuid.UUID("6f0b3a52-3c8e-4a2b-9a55-1d1f2b1f5c11")  # serial numbers are uuid5 in this namespace


@dataclass(frozen=True)
class SbomInputs:
    """What an image is made of, as the build knows it."""

    model: str
    version: str
    image: str  # repository:tag
    lock: Lock
    runtime_version: str
    runtime_sha256: str
    artifact_uri: str
    artifact_path: str  # in the image
    artifact_sha256: str
    base_image: str
    base_id: str  # the base image's config digest ("" when unknown: --context-only)
    created: int  # seconds since the epoch


def render_sbom(inputs: SbomInputs) -> bytes:
    """CycloneDX JSON bytes (validated against the 1.6 schema by the tests)."""
    from cyclonedx.model import HashAlgorithm, HashType, Property  # noqa: PLC0415 - only builds write SBOMs
    from cyclonedx.model.bom import Bom, BomMetaData  # noqa: PLC0415
    from cyclonedx.model.component import Component, ComponentType  # noqa: PLC0415
    from cyclonedx.output.json import JsonV1Dot6  # noqa: PLC0415
    from packageurl import PackageURL  # noqa: PLC0415

    def sha256(hexdigest: str) -> HashType:
        return HashType(alg=HashAlgorithm.SHA_256, content=hexdigest.removeprefix("sha256:"))

    packages = [
        Component(
            name=p.name, version=p.version, type=ComponentType.LIBRARY,
            purl=PackageURL(type="pypi", name=p.name, version=p.version), bom_ref=f"pkg:pypi/{p.name}@{p.version}",
            hashes=[sha256(h) for h in sorted(p.hashes)],
            properties=[Property(name="gitops-ml:lock", value=f"{inputs.lock.path}:{p.line}")],
        )
        for p in inputs.lock.packages
    ]
    runtime = Component(
        name="gitops-ml", version=inputs.runtime_version, type=ComponentType.FRAMEWORK, bom_ref="gitops-ml-runtime",
        purl=PackageURL(type="pypi", name="gitops-ml", version=inputs.runtime_version), hashes=[sha256(inputs.runtime_sha256)],
        description="the scoring server (a wheel built from gitops-ml's sources)",
    )
    artifact = Component(
        name=inputs.model, version=inputs.version, type=ComponentType.MACHINE_LEARNING_MODEL, bom_ref="model-artifact",
        hashes=[sha256(inputs.artifact_sha256)],
        properties=[Property(name="gitops-ml:artifact.uri", value=inputs.artifact_uri),
                    Property(name="gitops-ml:artifact.path", value=inputs.artifact_path)],
    )
    base = Component(
        name=inputs.base_image, type=ComponentType.CONTAINER, bom_ref="base-image",
        hashes=[sha256(inputs.base_id)] if inputs.base_id else None,
        description="the base image the layers are added to",
    )
    image, _, tag = inputs.image.rpartition(":")
    subject = Component(name=image, version=tag, type=ComponentType.CONTAINER, bom_ref="image",
                        properties=[Property(name="gitops-ml:lock.sha256", value=inputs.lock.sha256)])
    created = datetime.datetime.fromtimestamp(inputs.created, tz=datetime.timezone.utc)
    serial = uuid.uuid5(_NAMESPACE, "\n".join([inputs.image, inputs.lock.sha256, inputs.artifact_sha256, inputs.runtime_sha256, inputs.base_id]))
    bom = Bom(serial_number=serial, metadata=BomMetaData(component=subject, timestamp=created),
              components=[base, runtime, artifact, *packages])
    bom.register_dependency(subject, [base, runtime, artifact, *packages])
    return JsonV1Dot6(bom).output_as_string(indent=2).encode("utf-8") + b"\n"

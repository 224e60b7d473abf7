"""Content-addressed image references, shared by `render` and `build` (pure).

The tag is `<version>-<12 hex>` where the hex digest covers everything that goes into the image:
the model directory's files, the artifact digest, the base image, the Python version and the
gitops-ml runtime version. Same inputs give the same tag on any machine, with no registry call.
"""

from __future__ import annotations

import hashlib
from typing import Mapping

from gitops_ml import __version__
from gitops_ml.types import ImageRef, ModelName, Version

DIGEST_LENGTH = 12


def content_digest(
    files: Mapping[str, bytes],
    *,
    artifact_sha256: str,
    base_image: str,
    python: str,
    runtime_version: str = __version__,
) -> str:
    """sha256 over the sorted (path, file sha256) pairs and the build inputs, in hex."""
    h = hashlib.sha256()
    h.update(b"gitops-ml image v1\n")
    for key, value in (("artifact", artifact_sha256), ("base", base_image), ("python", python), ("runtime", runtime_version)):
        h.update(f"{key}={value}\n".encode())
    for path in sorted(files):
        h.update(f"file {path} {hashlib.sha256(files[path]).hexdigest()}\n".encode())
    return h.hexdigest()


def image_tag(version: Version, digest: str) -> str:
    # '+' (semver build metadata) is not allowed in a Docker tag
    return f"{str(version).replace('+', '_')}-{digest[:DIGEST_LENGTH]}"


def image_ref(registry: str, model: ModelName, version: Version, digest: str) -> ImageRef:
    return ImageRef(f"{registry.rstrip('/')}/{model}:{image_tag(version, digest)}")

"""The provenance of a pushed image: an in-toto Statement v1 carrying a SLSA Provenance v1 predicate
(source repository and revision, the model version's content digest, the base image, the lock's
sha256, the builder). Pure: written from what the build knows, never signed here (the workflows sign it).
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
MEDIA_TYPE = "application/vnd.in-toto+json"
BUILD_TYPE = "https://gitops-ml.dev/build/v1"


@dataclass(frozen=True)
class ProvenanceInputs:
    image: str  # repository (no tag)
    digest: str  # the pushed manifest's sha256:...
    model: str
    version: str
    content_digest: str  # the model version's content digest (the tag's hex comes from it)
    source: str  # repository URL
    revision: str  # commit
    model_dir: str
    base_image: str
    base_id: str
    lock_path: str  # repository-relative
    lock_sha256: str
    sbom_sha256: str
    builder: str  # who ran the build (GitHub's workflow run URL in CI, else gitops-ml on a host)
    runtime_version: str
    started: int
    finished: int


def _time(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_provenance(p: ProvenanceInputs) -> bytes:
    """The statement as JSON bytes (what `actions/attest-build-provenance` or cosign would sign)."""
    source_uri = f"git+{p.source}" if p.source else ""
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": p.image, "digest": {"sha256": p.digest.removeprefix("sha256:")}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "source": {"uri": source_uri, "revision": p.revision, "path": p.model_dir},
                    "model": {"name": p.model, "version": p.version, "contentDigest": {"sha256": p.content_digest}},
                },
                "internalParameters": {"runtime": {"name": "gitops-ml", "version": p.runtime_version}},
                "resolvedDependencies": [
                    d for d in (
                        {"uri": source_uri, "digest": {"gitCommit": p.revision}} if p.revision and source_uri else None,
                        {"uri": f"docker://{p.base_image}", "digest": {"sha256": p.base_id.removeprefix("sha256:")}} if p.base_id else
                        {"uri": f"docker://{p.base_image}"},
                        {"uri": p.lock_path, "digest": {"sha256": p.lock_sha256}} if p.lock_sha256 else None,
                        {"uri": "sbom.cdx.json", "digest": {"sha256": p.sbom_sha256}},
                    ) if d
                ],
            },
            "runDetails": {
                "builder": {"id": p.builder},
                "metadata": {"startedOn": _time(p.started), "finishedOn": _time(p.finished)},
            },
        },
    }
    return json.dumps(statement, indent=2, sort_keys=True).encode("utf-8") + b"\n"

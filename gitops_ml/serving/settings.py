"""Runtime settings of the scoring server, and their environment-variable contract.

`render` writes `to_env()` into each endpoint's ConfigMap; the server reads `from_env()` at start.
This module is the single source of truth for the variable names, the in-image paths and the
routes the probes call, so render, build and serve cannot drift apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Mapping

from gitops_ml.serving.predictions import OutputDeclaration
from gitops_ml.types import DeploymentSpec, ManifestSpec, ModelSpec

PREFIX = "GITOPS_ML_"
PORT = 8080
MODEL_DIR = "/opt/gitops-ml/model"
KEYS_DIR = "/var/run/secrets/gitops-ml/keys"
SCRATCH_DIR = "/tmp"
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
METRICS_PATH = "/metrics"
SCORE_PATH = "/score"
OPENAPI_PATH = "/swagger.json"
DOCS_PATH = "/docs"
# after SIGTERM inside a cluster: seconds of serving with readiness false while the endpoint removal propagates
KUBERNETES_DRAIN_SECONDS = 5.0
# what shutdown needs after the graceful stop: closing capture files and the access log
FLUSH_SECONDS = 5
# the gauge the server exports and an HPA on in-flight requests scales on (via a metrics adapter)
IN_FLIGHT_METRIC = "gitops_ml_in_flight"


@dataclass(frozen=True)
class ServerSettings:
    """Everything the server needs besides the model directory's files."""

    model_name: str = "model"
    model_version: str = "0.0.0"
    model_dir: str = MODEL_DIR
    port: int = PORT
    host: str = "0.0.0.0"
    auth_enabled: bool = True
    keys_dir: str = KEYS_DIR
    max_concurrent: int = 1
    queue_size: int = 10
    queue_timeout: float = 5.0
    request_timeout: float = 5.0
    max_body_bytes: int = 10 * 1024 * 1024
    body_timeout: float = 30.0  # seconds for a whole body to arrive after its headers (then 408)
    reject_status: int = 503
    batch_enabled: bool = False
    batch_max_size: int = 32
    batch_max_wait_ms: float = 2.0
    access_log: bool = True
    capture_enabled: bool = False
    capture_sampling: float = 1.0
    capture_dir: str = "/var/lib/gitops-ml/capture"
    capture_max_file_bytes: int = 64 * 1024 * 1024
    grace_seconds: float = 30.0
    # identity labels of every metric, so a canary and a shadow are told apart from the stable version
    environment: str = ""
    track: str = ""  # "" for the stable version, canary or shadow for a candidate
    prediction_metrics: str = ""  # the manifest's output declaration as JSON (predictions.OutputDeclaration)

    @classmethod
    def from_specs(
        cls, model: ModelSpec, manifest: ManifestSpec, deployment: DeploymentSpec | None = None, **overrides: object
    ) -> "ServerSettings":
        values: dict[str, object] = {
            "model_name": model.name,
            "model_version": str(model.version),
            "batch_enabled": manifest.batch.enabled,
            "batch_max_size": manifest.batch.max_batch_size,
            "batch_max_wait_ms": manifest.batch.max_wait_ms,
            "prediction_metrics": output_declaration(manifest),
        }
        if deployment is not None:
            req = deployment.requests
            values.update(
                auth_enabled=deployment.auth.enabled,
                max_concurrent=req.max_concurrent,
                queue_size=req.queue_size,
                queue_timeout=req.queue_timeout,
                request_timeout=req.timeout,
                max_body_bytes=req.max_body_bytes,
                reject_status=req.reject_status,
                access_log=deployment.logging,
                capture_enabled=deployment.capture.enabled,
                capture_sampling=deployment.capture.sampling,
                capture_dir=deployment.capture.path,
                capture_max_file_bytes=deployment.capture.max_file_bytes,
                grace_seconds=grace_seconds(deployment),
                environment=deployment.environment,
            )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """GITOPS_ML_* variables, as strings, sorted by name."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[PREFIX + f.name.upper()] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return dict(sorted(out.items()))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **defaults: object) -> "ServerSettings":
        """Settings from GITOPS_ML_* variables; `defaults` fill what the environment does not set."""
        env = os.environ if env is None else env
        values: dict[str, object] = dict(defaults)
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None:
                continue
            kind = type(getattr(cls(), f.name))
            if kind is bool:
                values[f.name] = raw.strip().lower() in {"1", "true", "yes", "on"}
            elif kind is int:
                values[f.name] = int(raw)
            elif kind is float:
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        return cls(**values)  # type: ignore[arg-type]


def output_declaration(manifest: ManifestSpec) -> str:
    """GITOPS_ML_PREDICTION_METRICS of a manifest: its output declaration as JSON, '' when it has none."""
    out = manifest.output
    if out is None:
        return ""
    return OutputDeclaration(out.kind, out.field, out.classes, out.max_classes, out.buckets).to_json()


def grace_seconds(deployment: DeploymentSpec) -> float:
    """Long enough to drain a full queue and the requests in flight, plus the endpoint removal lag."""
    req = deployment.requests
    per_slot = max(1, -(-req.queue_size // req.max_concurrent))
    drain = req.timeout * (per_slot + 1)
    return float(min(600, max(30, int(drain + 10))))

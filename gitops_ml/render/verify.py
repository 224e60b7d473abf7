"""`render --verify`: build every rendered kustomization with real Kustomize and validate the output.

Built-in kinds are checked against the Kubernetes OpenAPI schemas (kubernetes-validate, 1.30: the oldest Kubernetes the render supports);
Argo CD and Flux objects against their CRD schemas when a CRD directory is given. Kinds with no
schema at hand (ExternalSecret, HTTPRoute without their CRDs) are listed, not silently passed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from gitops_ml.adapters import kubernetes as kube
from gitops_ml.adapters import kustomize
from gitops_ml.errors import ExternalToolError, Location
from gitops_ml.types import Finding

CRDS_ENV = "GITOPS_ML_CRDS"


@dataclass
class VerifyReport:
    """What --verify built and found."""

    tool: str = ""
    built: list[str] = field(default_factory=list)  # kustomization directories, relative to the render root
    objects: int = 0
    validated: int = 0
    unchecked: dict[str, int] = field(default_factory=dict)  # "Kind apiVersion" -> count without a schema
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def kustomization_dirs(render_dir: Path) -> list[Path]:
    """Every overlay (apps/<env>/<model>) and every clusters/<env>: what the engines build."""
    out = []
    apps = render_dir / "apps"
    for env in sorted(os.listdir(apps)) if apps.is_dir() else []:
        if env == "base":
            continue
        for model in sorted(os.listdir(apps / env)):
            if (apps / env / model / "kustomization.yaml").is_file():
                out.append(apps / env / model)
    clusters = render_dir / "clusters"
    for env in sorted(os.listdir(clusters)) if clusters.is_dir() else []:
        if (clusters / env / "kustomization.yaml").is_file():
            out.append(clusters / env)
    return out


def crd_directories(explicit: list[Path]) -> list[Path]:
    if explicit:
        return explicit
    env = os.environ.get(CRDS_ENV, "")
    return [Path(p) for p in env.split(os.pathsep) if p]


def verify_render(render_dir: Path, label: str, *, crds: list[Path] = (), kubernetes_version: str = kube.KUBERNETES_VERSION) -> VerifyReport:  # type: ignore[assignment]
    """Build and validate every kustomization under render_dir; findings name the kustomization file."""
    tool = kustomize.find_kustomize()
    schemas = kube.CrdSchemas(list(crds))
    report = VerifyReport(tool=str(tool))
    dirs = kustomization_dirs(render_dir)
    for directory, built in kustomize.build_many(tool, dirs):
        rel = directory.relative_to(render_dir).as_posix()
        where = Location(f"{label}/{rel}/kustomization.yaml")
        report.built.append(rel)
        if isinstance(built, ExternalToolError):
            report.findings.append(Finding(where, built.message))
            continue
        for obj in built:
            report.objects += 1
            name = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
            try:
                errors = kube.kubernetes_errors(obj, kubernetes_version)
            except kube.NoSchema:
                try:
                    errors = schemas.errors(obj)
                except kube.NoSchema:
                    key = f"{obj.get('kind')} {obj.get('apiVersion')}"
                    report.unchecked[key] = report.unchecked.get(key, 0) + 1
                    continue
            report.validated += 1
            for error in errors:
                report.findings.append(Finding(where, f"{name}: {error}"))
    return report

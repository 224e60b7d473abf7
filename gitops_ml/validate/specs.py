"""The typed specs of a tree without errors (`Specs`, `ModelEntry`) and what validation reports
(`Report`): the shapes the rules build (rules) and the rollout rules read (rollout). Never prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gitops_ml.types import DeploymentSpec, Finding, ManifestSpec, ModelName, ModelSpec, RepositorySpec


@dataclass(frozen=True)
class ModelEntry:
    """A model as the working tree (or a commit) has it: validated specs and where they live."""

    spec: ModelSpec
    manifest: ManifestSpec
    dir: str


@dataclass
class Specs:
    """The typed repository, built only from a tree without errors."""

    repository: RepositorySpec
    models: dict[ModelName, ModelEntry]
    deployments: list[DeploymentSpec]
    deployment_files: dict[tuple[str, str], str]  # (environment, model) -> path


@dataclass
class Report:
    """What validation found; `specs` is set when there are no errors but, perhaps, locks older than their requirements."""

    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    specs: Specs | None = None

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

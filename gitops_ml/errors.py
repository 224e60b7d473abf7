"""One exception hierarchy for the whole tool; the CLI turns these into messages and exit codes.

    GitopsMlError                 root; `exit_code` and an optional Location
    +-- UsageError                the command line itself is wrong (exit 2)
    +-- ConfigError               a setting outside the repository files is wrong (exit 3)
        +-- KubeconfigError       no usable Kubernetes configuration (kubeconfig, context, in-cluster)
    +-- LoadError                 a file cannot be read or parsed as YAML/JSON (exit 1)
    +-- ValidationError           one or more findings in the repository (exit 1)
    +-- CheckFailed               a check found differences (render --check, exit 1)
    +-- RenderError               the repository cannot be rendered as asked (exit 1)
    +-- RegistryError             git history cannot answer (unknown version, shallow clone; exit 4)
    +-- EditError                 an edit (bump, promote, rollback) is refused (exit 4)
    +-- ExternalToolError         kustomize, docker, a registry or GitHub failed (exit 5)
        +-- DockerError           the Docker engine or an image registry failed
        +-- GitHubError           the GitHub REST API refused or failed
        +-- ClusterError          the Kubernetes API server is unreachable, refused or failed
            +-- ClusterAccessError    401/403: the credentials, or a permission, are missing
            +-- NamespaceNotFound     an environment's namespace does not exist on the cluster
            +-- EngineNotInstalled    the GitOps engine's CRDs (Argo CD, Flux) are not served
    +-- ArtifactError             an artifact cannot be fetched or does not match its digest (exit 6)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True, order=True)
class Location:
    """Where a problem is: a repository-relative path, 1-based line and column, and a JSON path."""

    path: str
    line: int = 0
    col: int = 0
    json_path: str = ""

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.col}"
        return self.path


class GitopsMlError(Exception):
    """Root of every error the tool raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, location: Location | None = None, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class UsageError(GitopsMlError):
    """Raised when the command line names something that cannot be used as given."""

    exit_code = 2


class ConfigError(GitopsMlError):
    """Raised when a setting outside the repository files (environment, flags) is wrong."""

    exit_code = 3


class KubeconfigError(ConfigError):
    """Raised when no usable Kubernetes configuration exists (kubeconfig, --context, in-cluster)."""


class LoadError(GitopsMlError):
    """Raised when a file cannot be read, decoded or parsed."""

    exit_code = 1


class ValidationError(GitopsMlError):
    """Raised when validation found problems; carries every finding, not only the first."""

    exit_code = 1

    def __init__(self, findings: Sequence[object], message: str = "") -> None:
        super().__init__(message or f"{len(findings)} problem(s) found")
        self.findings = list(findings)


class CheckFailed(GitopsMlError):
    """Raised when a check (e.g. `render --check`) found differences."""

    exit_code = 1


class RenderError(GitopsMlError):
    """Raised when the repository cannot be rendered as asked."""

    exit_code = 1


class RegistryError(GitopsMlError):
    """Raised when git history cannot answer a registry question (unknown version, shallow clone)."""

    exit_code = 4


class EditError(GitopsMlError):
    """Raised when an edit (bump, promote, rollback) is refused before anything is written."""

    exit_code = 4


class ExternalToolError(GitopsMlError):
    """Raised when an external tool or service (kustomize, docker, a registry, GitHub) fails."""

    exit_code = 5


class DockerError(ExternalToolError):
    """Raised when the Docker engine or an image registry fails or refuses."""


class GitHubError(ExternalToolError):
    """Raised when the GitHub REST API refuses or fails."""


class ClusterError(ExternalToolError):
    """Raised when the Kubernetes API server cannot be reached, or fails or refuses a request."""


class ClusterAccessError(ClusterError):
    """Raised when the API server rejects the credentials (401) or a permission is missing (403)."""


class NamespaceNotFound(ClusterError):
    """Raised when the namespace of an environment does not exist on the cluster asked."""


class EngineNotInstalled(ClusterError):
    """Raised when the cluster does not serve the GitOps engine's resources (its CRDs are missing)."""


class ArtifactError(GitopsMlError):
    """Raised when a model artifact cannot be fetched or does not match its sha256."""

    exit_code = 6

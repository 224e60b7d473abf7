"""The status stage's data: what git wants per endpoint, what the cluster shows, and the verdicts.

Frozen dataclasses only; building them from a plan is `desired`, from the API's JSON `observed`,
and comparing them `compare`. Nothing here reads git or talks to a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from gitops_ml.types import Engine, EnvironmentName, ModelName, Version


@dataclass(frozen=True)
class RenderedKeys:
    """The labels and annotations render puts on objects, by which status finds and reads them."""

    managed_by: tuple[str, str]  # (label, value) every rendered object carries
    part_of: str  # label whose value is the repository's name
    name: str  # label whose value is the model
    environment: str  # label whose value is the environment
    version_label: str
    version_annotation: str
    image_tag_annotation: str
    revision_annotation: str
    container: str  # the serving container's name in the pod template


# --- desired (from git) --------------------------------------------------------------------------


@dataclass(frozen=True)
class DesiredVersion:
    """One version git wants to run: what render wrote into the pod template."""

    version: Version
    image_tag: str
    revision: str  # `<model>@v<version>`, the tag of the commit that registered it
    commit: str | None  # that commit when render read the version from history; None: the working tree


@dataclass(frozen=True)
class DesiredScaling:
    min_replicas: int
    max_replicas: int


@dataclass(frozen=True)
class EngineRef:
    """The engine object that deploys an endpoint (Argo CD Application or Flux Kustomization)."""

    engine: Engine
    namespace: str
    name: str
    auto_sync: bool


@dataclass(frozen=True)
class DesiredEndpoint:
    """One model in one environment as git declares it."""

    environment: EnvironmentName
    model: ModelName
    namespace: str
    source_path: str  # deployments/<env>/<model>.yaml
    stable: DesiredVersion
    engine: EngineRef
    replicas: int | None = None  # a fixed count; None when an autoscaler owns it
    autoscaling: DesiredScaling | None = None
    # a candidate beside the stable version (issue 12): None until render declares one
    canary: DesiredVersion | None = None
    canary_weight: int | None = None
    shadow: DesiredVersion | None = None


@dataclass(frozen=True)
class DesiredEnvironment:
    name: EnvironmentName
    namespace: str
    engine: Engine
    engine_namespace: str


@dataclass(frozen=True)
class Desired:
    """What git declares, for the environments and models asked about."""

    repository: str
    keys: RenderedKeys
    environments: tuple[DesiredEnvironment, ...]
    endpoints: tuple[DesiredEndpoint, ...]
    models: tuple[ModelName, ...] = ()  # only these (--model); () means all

    @property
    def selector(self) -> str:
        """Label selector of everything render made for this repository."""
        label, value = self.keys.managed_by
        return f"{label}={value},{self.keys.part_of}={self.repository}"


# --- observed (from the cluster) -----------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class PodTemplate:
    """What a pod template says runs: from render's annotations, else its label and image."""

    version: str | None
    image_tag: str | None
    image: str | None
    revision: str | None


@dataclass(frozen=True)
class RolloutState:
    """An Argo Rollouts `Rollout`'s progress."""

    phase: str
    message: str
    canary_weight: int | None
    step: int | None
    steps: int
    stable_hash: str
    current_hash: str
    aborted: bool


@dataclass(frozen=True)
class Workload:
    """A Deployment or an Argo Rollout that serves an endpoint (or its canary/shadow)."""

    kind: str
    name: str
    namespace: str
    uid: str
    environment: str | None  # the environment label
    model: str | None  # the name label
    generation: int
    observed_generation: int
    template: PodTemplate
    spec_replicas: int | None
    replicas: int
    updated: int
    ready: int
    available: int
    conditions: tuple[Condition, ...] = ()
    paused: bool = False
    rollout: RolloutState | None = None

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


@dataclass(frozen=True)
class ReplicaSet:
    name: str
    namespace: str
    owner_uid: str
    template: PodTemplate
    pod_hash: str  # pod-template-hash, or rollouts-pod-template-hash
    revision: int  # deployment.kubernetes.io/revision (0 when absent)
    replicas: int
    ready: int
    available: int


@dataclass(frozen=True)
class Autoscaler:
    """A HorizontalPodAutoscaler (rendered, or the one KEDA makes for a ScaledObject)."""

    name: str
    namespace: str
    target_kind: str
    target_name: str
    min_replicas: int
    max_replicas: int
    current: int
    desired: int
    conditions: tuple[Condition, ...] = ()

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


@dataclass(frozen=True)
class ScaledObject:
    """A KEDA ScaledObject; its HPA (status.hpaName) holds the replica counts."""

    name: str
    namespace: str
    target_name: str
    min_replicas: int | None
    max_replicas: int | None
    hpa_name: str
    conditions: tuple[Condition, ...] = ()

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    pod_hash: str
    phase: str
    ready: bool
    problems: tuple[str, ...]  # "ImagePullBackOff: ...", "CrashLoopBackOff (restarted 5 times)", ...


@dataclass(frozen=True)
class EngineState:
    """An Argo CD Application or Flux Kustomization as the cluster reports it."""

    kind: str
    name: str
    namespace: str
    environment: str | None
    model: str | None
    revision: str | None  # the commit id the engine last synced / applied
    sync: str | None = None  # Argo CD: Synced | OutOfSync | Unknown
    health: str | None = None  # Argo CD: Healthy | Progressing | Degraded | Suspended | Missing | Unknown
    ready: Condition | None = None  # Flux: the Ready condition
    message: str = ""
    suspended: bool = False
    operation: str = ""  # Argo CD: phase of the running/last sync operation


@dataclass
class Snapshot:
    """Everything read from the cluster for one comparison."""

    workloads: list[Workload] = field(default_factory=list)
    replicasets: list[ReplicaSet] = field(default_factory=list)
    autoscalers: list[Autoscaler] = field(default_factory=list)
    scaled_objects: list[ScaledObject] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)
    engines: list[EngineState] = field(default_factory=list)
    missing_namespaces: frozenset[str] = frozenset()
    rollouts_served: bool = False


class Relation(str, Enum):
    """Where a revision the engine reports stands against the repository's HEAD."""

    HEAD = "head"
    BEHIND = "behind"  # an ancestor of HEAD: the engine has not caught up
    AHEAD = "ahead"  # HEAD is its ancestor: this checkout is older than the cluster
    DIVERGED = "diverged"
    UNKNOWN = "unknown"  # not in this clone


@dataclass(frozen=True)
class Head:
    """The repository's HEAD and how each engine revision relates to it (computed with git beforehand)."""

    commit: str | None
    relations: dict[str, Relation] = field(default_factory=dict)

    def relation(self, revision: str) -> Relation:
        if self.commit is not None and revision == self.commit:
            return Relation.HEAD
        return self.relations.get(revision, Relation.UNKNOWN)


# --- the verdicts ---------------------------------------------------------------------------------


class Severity(int, Enum):
    """How much a mark matters; an endpoint is as bad as its worst mark."""

    INFO = 0
    WARNING = 1  # worth a look, not a failure (an autoscaler at its maximum)
    PROGRESS = 2  # moving towards git (a rollout, a sync)
    DRIFT = 3  # the cluster differs from git and nothing says it is moving
    FAILURE = 4  # failed or unhealthy


class Code(str, Enum):
    """What a mark is about (stable names for --format json)."""

    MISSING = "missing"
    EXTRA = "extra"
    NAMESPACE_MISSING = "namespace-missing"
    SPEC_VERSION = "spec-version"
    SPEC_IMAGE = "spec-image"
    ROLLING_OUT = "rolling-out"
    ROLLOUT_FAILED = "rollout-failed"
    UNAVAILABLE = "unavailable"
    PAUSED = "paused"
    CANARY = "canary"
    CANARY_MISSING = "canary-missing"
    PODS = "pods"
    REPLICAS = "replicas"
    AUTOSCALER_MISSING = "autoscaler-missing"
    AUTOSCALER_LIMITS = "autoscaler-limits"
    AUTOSCALER_AT_MAX = "autoscaler-at-max"
    AUTOSCALER_BLIND = "autoscaler-metrics"
    KEDA = "keda"
    ENGINE_MISSING = "engine-missing"
    ENGINE_OUT_OF_SYNC = "engine-out-of-sync"
    ENGINE_UNHEALTHY = "engine-unhealthy"
    ENGINE_PROGRESSING = "engine-progressing"
    ENGINE_NOT_READY = "engine-not-ready"
    ENGINE_SUSPENDED = "engine-suspended"
    ENGINE_BEHIND = "engine-behind"
    ENGINE_AHEAD = "engine-ahead"
    ENGINE_REVISION = "engine-revision"


@dataclass(frozen=True)
class Mark:
    code: Code
    severity: Severity
    message: str


class Verdict(str, Enum):
    OK = "ok"
    WARNING = "warning"
    PROGRESSING = "progressing"
    OUT_OF_SYNC = "out-of-sync"
    MISSING = "missing"
    EXTRA = "extra"
    FAILED = "failed"

    @property
    def settled(self) -> bool:
        """In sync and healthy: what --watch waits for and what exits 0."""
        return self in (Verdict.OK, Verdict.WARNING)


@dataclass(frozen=True)
class RunningVersion:
    """Pods of one pod template: its version, image tag and how many replicas are ready."""

    version: str | None
    image_tag: str | None
    replicas: int
    ready: int
    role: str  # "stable" | "canary" | "shadow" | "old" (being replaced) | "new" (rolling in)


@dataclass(frozen=True)
class Scaling:
    """What the autoscaler (HPA or KEDA) says, or the fixed replica count."""

    kind: str  # "hpa" | "keda" | "fixed"
    current: int
    desired: int
    min_replicas: int | None = None
    max_replicas: int | None = None


@dataclass(frozen=True)
class EndpointStatus:
    """One endpoint: git's view, the cluster's view, marks where they differ, and the verdict."""

    environment: str
    model: str
    namespace: str
    verdict: Verdict
    marks: tuple[Mark, ...]
    desired: DesiredEndpoint | None  # None for an endpoint git no longer declares
    workload: Workload | None
    running: tuple[RunningVersion, ...] = ()
    scaling: Scaling | None = None
    engine: EngineState | None = None
    engine_relation: Relation | None = None
    canary_weight: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.environment, self.model)


@dataclass(frozen=True)
class StatusReport:
    endpoints: tuple[EndpointStatus, ...]
    head: str | None
    server: str = ""
    identity: str = ""
    calls: int = 0  # API requests made
    timed_out: bool = False  # --watch gave up before every endpoint settled

    @property
    def settled(self) -> bool:
        return all(e.verdict.settled for e in self.endpoints)

    @property
    def counts(self) -> dict[Verdict, int]:
        out: dict[Verdict, int] = {}
        for e in self.endpoints:
            out[e.verdict] = out.get(e.verdict, 0) + 1
        return out

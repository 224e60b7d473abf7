"""Frozen dataclasses and enums shared by the stages: the repository as typed specs.

Specs are built from documents that already passed their JSON Schema, so constructors here only
apply defaults; they never validate and never touch the disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping, NewType

from gitops_ml.errors import Location

ModelName = NewType("ModelName", str)
EnvironmentName = NewType("EnvironmentName", str)
ImageRef = NewType("ImageRef", str)

API_VERSION = "gitops-ml.dev/v1"
REPOSITORY_FILE = "gitops-ml.yaml"
MODELS_DIR = "models"
DEPLOYMENTS_DIR = "deployments"

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$"
)


class Kind(str, Enum):
    """The four kinds of file a repository holds; each selects a JSON Schema."""

    REPOSITORY = "Repository"
    MODEL = "Model"
    MANIFEST = "Manifest"
    DEPLOYMENT = "Deployment"

    @property
    def schema_name(self) -> str:
        return f"{self.value.lower()}.schema.json"


class Engine(str, Enum):
    """GitOps engine that applies an environment's rendered manifests."""

    ARGOCD = "argocd"
    FLUX = "flux"


class RolloutController(str, Enum):
    """Who moves traffic to a candidate: the Gateway API route as git declares it, or Argo Rollouts
    (a Rollout with canary steps, gated by an AnalysisTemplate)."""

    GATEWAY_API = "gateway-api"
    ARGO_ROLLOUTS = "argo-rollouts"


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Finding:
    """One problem in the repository, located to a file, line and column."""

    location: Location
    message: str
    severity: Severity = Severity.ERROR
    hint: str = ""

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


@dataclass(frozen=True)
class Version:
    """A semantic version; ordering follows semver precedence (pre-releases sort before releases)."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[Any, ...] = ()
    build: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> "Version":
        match = _SEMVER.match(str(text))
        if not match:
            raise ValueError(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH)")
        pre: tuple[Any, ...] = ()
        if match.group(4):
            pre = tuple(
                (0, int(p), "") if p.isdigit() else (1, 0, p) for p in match.group(4).split(".")
            )
        return cls(int(match[1]), int(match[2]), int(match[3]), pre, match.group(5) or "")

    @classmethod
    def is_valid(cls, text: str) -> bool:
        return bool(_SEMVER.match(str(text)))

    def __lt__(self, other: object) -> bool:  # release > any of its pre-releases
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() < other._key()

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() <= other._key()

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() > other._key()

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() >= other._key()

    def _key(self) -> tuple[Any, ...]:
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, self.prerelease)

    def bump(self, part: str) -> "Version":
        if part == "major":
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            return Version(self.major, self.minor + 1, 0)
        return Version(self.major, self.minor, self.patch + 1)

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(n) if kind == 0 else s for kind, n, s in self.prerelease)
        if self.build:
            text += "+" + self.build
        return text


@dataclass(frozen=True)
class ModelPin:
    """`iris` (track the newest version) or `iris@1.2.0` (read that version from git)."""

    model: ModelName
    version: Version | None = None

    @classmethod
    def parse(cls, text: str) -> "ModelPin":
        name, _, version = str(text).partition("@")
        return cls(ModelName(name), Version.parse(version) if version else None)

    def __str__(self) -> str:
        return f"{self.model}@{self.version}" if self.version else self.model


# --- Repository -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvironmentMonitoring:
    """What render adds per endpoint for the cluster's Prometheus Operator and Grafana (`monitoring:` of
    an environment in gitops-ml.yaml); a cluster without them opts out."""

    enabled: bool = True  # PodMonitor, and the NetworkPolicy lets Prometheus in
    alerts: bool = True  # PrometheusRule
    dashboard: bool = True  # Grafana dashboard ConfigMap (sidecar convention)
    labels: Mapping[str, str] = field(default_factory=dict)  # what the Prometheus' selectors ask for
    prometheus_namespace: str = "monitoring"
    runbook_url: str = ""

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> "EnvironmentMonitoring":
        enabled = bool(doc.get("enabled", True))
        return cls(
            enabled=enabled,
            alerts=enabled and bool(doc.get("alerts", True)),
            dashboard=enabled and bool(doc.get("dashboard", True)),
            labels=dict(doc.get("labels") or {}),
            prometheus_namespace=doc.get("prometheusNamespace", "monitoring"),
            runbook_url=doc.get("runbookUrl", ""),
        )


@dataclass(frozen=True)
class Environment:
    name: EnvironmentName
    namespace: str
    engine: Engine
    cluster: str = "https://kubernetes.default.svc"
    engines_namespace: str = ""
    auto_sync: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)
    application_set: bool = False
    prometheus: str = ""  # address the cluster's rollout analysis and KEDA triggers query
    rollout_controller: RolloutController = RolloutController.GATEWAY_API
    monitoring: EnvironmentMonitoring = EnvironmentMonitoring()

    @property
    def engine_namespace(self) -> str:
        if self.engines_namespace:
            return self.engines_namespace
        return "argocd" if self.engine is Engine.ARGOCD else "flux-system"


@dataclass(frozen=True)
class RepositorySpec:
    name: str
    registry: str
    base_image: str
    engine: Engine
    render_root: str
    environments: Mapping[EnvironmentName, Environment]
    source_url: str = "https://github.com/example/models.git"
    source_branch: str = "main"
    pull_secret: str = ""

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> "RepositorySpec":
        engine = Engine(doc.get("engine", "argocd"))
        envs = {}
        for name, env in (doc.get("environments") or {}).items():
            envs[EnvironmentName(name)] = Environment(
                name=EnvironmentName(name),
                namespace=env["namespace"],
                engine=Engine(env.get("engine", engine.value)),
                cluster=env.get("cluster", "https://kubernetes.default.svc"),
                engines_namespace=env.get("enginesNamespace", ""),
                auto_sync=env.get("autoSync", True),
                labels=dict(env.get("labels") or {}),
                application_set=bool(env.get("applicationSet", False)),
                prometheus=env.get("prometheus", ""),
                rollout_controller=RolloutController((env.get("rollout") or {}).get("controller", RolloutController.GATEWAY_API.value)),
                monitoring=EnvironmentMonitoring.from_doc(env.get("monitoring") or {}),
            )
        image = doc.get("image") or {}
        source = doc.get("source") or {}
        return cls(
            name=doc["name"],
            registry=image["registry"],
            base_image=image.get("baseImage", "python:3.11-slim"),
            engine=engine,
            render_root=doc.get("renderRoot", "deploy").rstrip("/"),
            environments=envs,
            source_url=source.get("url", "https://github.com/example/models.git"),
            source_branch=source.get("branch", "main"),
            pull_secret=image.get("pullSecret", ""),
        )


# --- Model and Manifest ---------------------------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    uri: str
    sha256: str
    path: str

    @property
    def scheme(self) -> str:
        head, sep, _ = self.uri.partition("://")
        return head if sep else "path"


@dataclass(frozen=True)
class ModelSpec:
    name: ModelName
    version: Version
    artifact: Artifact
    framework: str = ""
    framework_version: str = ""
    description: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    lineage: Mapping[str, str] = field(default_factory=dict)
    reference: str = ""  # reference profile, relative to the model directory ("" when none)

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> "ModelSpec":
        art = doc["artifact"]
        uri = art["uri"]
        framework = doc.get("framework") or {}
        return cls(
            name=ModelName(doc["name"]),
            version=Version.parse(doc["version"]),
            artifact=Artifact(uri, art["sha256"], art.get("path") or uri.rstrip("/").rsplit("/", 1)[-1]),
            framework=framework.get("name", ""),
            framework_version=str(framework.get("version", "")),
            description=doc.get("description", ""),
            metrics=dict(doc.get("metrics") or {}),
            lineage={k: str(v) for k, v in (doc.get("lineage") or {}).items()},
            reference=doc.get("reference", ""),
        )


@dataclass(frozen=True)
class BatchSpec:
    enabled: bool = False
    max_batch_size: int = 32
    max_wait_ms: float = 2.0


@dataclass(frozen=True)
class OutputSpec:
    """What a model's answer is, so the server can count predictions per version: the class labels
    (or numeric scores) under one field of the response object."""

    kind: str  # class | score
    field: str
    classes: tuple[str, ...] = ()  # declared labels; otherwise the first max_classes seen, then "other"
    max_classes: int = 10
    buckets: tuple[float, ...] = ()  # histogram bounds for scores; () means 0.1 steps from 0 to 1

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> "OutputSpec":
        return cls(
            kind=doc["kind"],
            field=doc["field"],
            classes=tuple(str(c) for c in doc.get("classes") or ()),
            max_classes=int(doc.get("maxClasses", 10)),
            buckets=tuple(float(b) for b in doc.get("buckets") or ()),
        )


@dataclass(frozen=True)
class ManifestSpec:
    script: str = "score.py"  # "" when a built-in scorer loads the artifact instead
    batch: BatchSpec = BatchSpec()
    requirements: str = ""
    conda: str = ""
    lock: str = ""  # hashed lock written by `gitops-ml lock`; build installs exactly it
    python: str = "3.11"
    base_image: str = ""
    schema: str = ""
    output_schema: str = ""
    sample: str = ""
    include: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    output: OutputSpec | None = None
    builtin: str = ""  # sklearn | xgboost | lightgbm | onnx | mlflow: a built-in scorer of the artifact
    probabilities: bool = False  # the built-in also answers class probabilities

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> "ManifestSpec":
        scoring = doc.get("scoring") or {}
        batch = scoring.get("batch") or {}
        deps = doc.get("dependencies") or {}
        builtin = str(scoring.get("builtin") or "")
        return cls(
            script=scoring.get("script", "" if builtin else "score.py"),
            builtin=builtin,
            probabilities=bool(scoring.get("probabilities", False)),
            batch=BatchSpec(
                enabled=batch.get("enabled", False),
                max_batch_size=batch.get("maxBatchSize", 32),
                max_wait_ms=float(batch.get("maxWaitMs", 2)),
            ),
            requirements=deps.get("requirements", ""),
            conda=deps.get("conda", ""),
            lock=deps.get("lock", ""),
            python=str(doc.get("python", "3.11")),
            base_image=doc.get("baseImage", ""),
            schema=doc.get("schema", ""),
            output_schema=doc.get("outputSchema", ""),
            sample=doc.get("sample", ""),
            include=tuple(doc.get("include") or ()),
            env=dict(doc.get("env") or {}),
            output=OutputSpec.from_doc(doc["output"]) if doc.get("output") else None,
        )

    def referenced_paths(self) -> dict[str, str]:
        """Manifest field (dotted JSON path) -> path relative to the model directory."""
        refs = {
            "scoring.script": self.script,
            "dependencies.requirements": self.requirements,
            "dependencies.conda": self.conda,
            "dependencies.lock": self.lock,
            "schema": self.schema,
            "outputSchema": self.output_schema,
            "sample": self.sample,
        }
        refs.update({f"include.{i}": p for i, p in enumerate(self.include)})
        return {k: v for k, v in refs.items() if v}


# --- Deployment -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Autoscaling:
    enabled: bool = True
    min_replicas: int = 1
    max_replicas: int = 10
    target_cpu: int = 70
    target_in_flight: float | None = None
    scale_down_stabilization: int = 300
    metric: str = "cpu"  # cpu (an HPA) | concurrency (a KEDA ScaledObject on in-flight + queued requests)
    target_concurrency: float | None = None  # per replica; None: requests.maxConcurrent


@dataclass(frozen=True)
class RequestSettings:
    max_concurrent: int = 1
    queue_size: int = 10
    queue_timeout: float = 5.0
    timeout: float = 5.0
    max_body_bytes: int = 10 * 1024 * 1024
    reject_status: int = 503


@dataclass(frozen=True)
class ExternalSecretSpec:
    store_name: str
    store_kind: str
    remote_key: str
    refresh_interval: str = "1h"


@dataclass(frozen=True)
class AuthSpec:
    mode: str = "secret"  # secret | externalSecret | disabled
    secret_name: str = ""
    external: ExternalSecretSpec | None = None

    @property
    def enabled(self) -> bool:
        return self.mode != "disabled"


@dataclass(frozen=True)
class CaptureSpec:
    enabled: bool = False
    sampling: float = 1.0
    path: str = "/var/lib/gitops-ml/capture"
    volume_claim: str = ""
    max_file_bytes: int = 64 * 1024 * 1024
    sink_uri: str = ""  # s3://bucket/prefix: closed files are uploaded there ("" keeps them in the pod)
    sink_endpoint: str = ""  # an S3-compatible store's endpoint URL ("" for AWS)
    sink_region: str = ""
    credentials_secret: str = ""  # Secret of AWS_* variables for the server ("" for the pod's identity)


@dataclass(frozen=True)
class DriftThresholds:
    psi: float = 0.2
    p_value: float = 0.01


@dataclass(frozen=True)
class AlertThresholds:
    """When the rendered PrometheusRule's alerts fire (deployment file `monitoring.alerts:`)."""

    error_ratio: float | None = None  # None: monitoring.errorRatio
    latency_p99_seconds: float | None = None  # None: LATENCY_SHARE of the request timeout
    rejected_ratio: float = 0.01
    duration: str = "5m"  # `for:` of the ratio alerts


# the share of the request timeout at which the p99 alert fires by default: past it, a little more
# load and requests are cut off (504), which the error-ratio alert then counts
LATENCY_SHARE = 0.8


@dataclass(frozen=True)
class MonitoringSpec:
    """Thresholds `monitor` checks captured records against (deployment file `monitoring:`), and
    those of the rendered alerts."""

    min_records: int = 100
    drift: DriftThresholds = DriftThresholds()
    refused_ratio: float = 0.05
    error_ratio: float = 0.01
    latency_p99_seconds: float | None = None  # None: the request timeout
    alerts: AlertThresholds = AlertThresholds()


@dataclass(frozen=True)
class Probe:
    initial_delay: int = 0
    period: int = 10
    timeout: int = 2
    failure_threshold: int = 3


@dataclass(frozen=True)
class ExposureSpec:
    host: str
    path: str = "/"
    type: str = "ingress"  # ingress | httproute
    ingress_class: str = ""
    tls_secret: str = ""
    gateway_name: str = ""
    gateway_namespace: str = ""
    gateway_section: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)
    tls_issuer: str = ""  # cert-manager issuer that makes tls_secret (Ingress only)
    tls_issuer_kind: str = "ClusterIssuer"
    tls_listener: str = ""  # the Gateway's HTTPS listener (HTTPRoute only)

    @property
    def tls(self) -> bool:
        return bool(self.tls_secret or self.tls_listener)


@dataclass(frozen=True)
class Canary:
    """A candidate version answering `weight` percent of the endpoint's live traffic."""

    pin: ModelPin
    weight: int


@dataclass(frozen=True)
class Shadow:
    """A candidate version receiving a mirror of `percent` percent of live traffic; its answers are
    captured and counted, never returned to a caller."""

    pin: ModelPin
    percent: int = 100


@dataclass(frozen=True)
class Analysis:
    """When a canary is good enough to go on: the limits `canary status` and an AnalysisTemplate check."""

    max_error_ratio: float = 0.01
    max_p99_seconds: float = 1.0
    max_prediction_shift: float = 0.1
    window: str = "5m"


@dataclass(frozen=True)
class RolloutSpec:
    """Candidates beside the stable `model:` of a deployment file (`rollout:`)."""

    canary: Canary | None = None
    shadow: Shadow | None = None
    analysis: Analysis = Analysis()
    analysis_declared: bool = False
    controller: RolloutController | None = None  # None: the environment's

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> "RolloutSpec":
        canary, shadow, analysis = doc.get("canary"), doc.get("shadow"), doc.get("analysis")
        defaults = Analysis()
        return cls(
            canary=Canary(ModelPin.parse(canary["model"]), int(canary["weight"])) if canary else None,
            shadow=Shadow(ModelPin.parse(shadow["model"]), int(shadow.get("percent", 100))) if shadow else None,
            analysis=Analysis(
                max_error_ratio=float(analysis.get("maxErrorRatio", defaults.max_error_ratio)),
                max_p99_seconds=float(analysis.get("maxP99Seconds", defaults.max_p99_seconds)),
                max_prediction_shift=float(analysis.get("maxPredictionShift", defaults.max_prediction_shift)),
                window=str(analysis.get("window", defaults.window)),
            )
            if analysis is not None
            else defaults,
            analysis_declared=analysis is not None,
            controller=RolloutController(doc["controller"]) if doc.get("controller") else None,
        )

    @property
    def candidates(self) -> tuple[tuple[str, ModelPin], ...]:
        """(track, pin) of each declared candidate: `canary`, then `shadow`."""
        out: list[tuple[str, ModelPin]] = []
        if self.canary is not None:
            out.append(("canary", self.canary.pin))
        if self.shadow is not None:
            out.append(("shadow", self.shadow.pin))
        return tuple(out)


@dataclass(frozen=True)
class DeploymentSpec:
    environment: EnvironmentName
    pin: ModelPin
    replicas: int = 1
    autoscaling: Autoscaling = Autoscaling()
    requests: RequestSettings = RequestSettings()
    auth: AuthSpec = AuthSpec()
    logging: bool = True
    capture: CaptureSpec = CaptureSpec()
    monitoring: MonitoringSpec = MonitoringSpec()
    resource_requests: Mapping[str, str] = field(default_factory=lambda: {"cpu": "250m", "memory": "256Mi"})
    resource_limits: Mapping[str, str] = field(default_factory=lambda: {"memory": "1Gi"})
    startup_probe: Probe = Probe(period=5, failure_threshold=60)
    liveness_probe: Probe = Probe(period=10, failure_threshold=3)
    readiness_probe: Probe = Probe(period=5, failure_threshold=2)
    exposure: ExposureSpec | None = None
    network_policy: bool = True
    allow_from: tuple[Mapping[str, Any], ...] = ()
    allow_egress: bool = False
    pdb_max_unavailable: int | str = 1
    env: Mapping[str, str] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    rollout: RolloutSpec = RolloutSpec()
    service_account_annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def model(self) -> ModelName:
        return self.pin.model

    def controller(self, environment: Environment) -> RolloutController:
        """Who moves traffic for this endpoint: the deployment file's choice, else its environment's."""
        return self.rollout.controller or environment.rollout_controller

    @classmethod
    def from_doc(cls, environment: str, doc: Mapping[str, Any]) -> "DeploymentSpec":
        pin = ModelPin.parse(doc["model"])
        auto = doc.get("autoscaling") or {}
        req = doc.get("requests") or {}
        auth = doc.get("auth") or {}
        ext = auth.get("externalSecret")
        tel = doc.get("telemetry") or {}
        cap = tel.get("capture") or {}
        sink = cap.get("sink") or {}
        mon = doc.get("monitoring") or {}
        drift = mon.get("drift") or {}
        alerts = mon.get("alerts") or {}
        res = doc.get("resources") or {}
        probes = doc.get("probes") or {}
        exp = doc.get("exposure")
        net = doc.get("networkPolicy") or {}

        def probe(name: str, default: Probe) -> Probe:
            p = probes.get(name) or {}
            return Probe(
                initial_delay=p.get("initialDelaySeconds", default.initial_delay),
                period=p.get("periodSeconds", default.period),
                timeout=p.get("timeoutSeconds", default.timeout),
                failure_threshold=p.get("failureThreshold", default.failure_threshold),
            )

        exposure = None
        if exp:
            gw = exp.get("gateway") or {}
            tls = exp.get("tls") or {}
            exposure = ExposureSpec(
                host=exp["host"],
                path=exp.get("path", "/"),
                type=exp.get("type", "ingress"),
                ingress_class=exp.get("ingressClassName", ""),
                tls_secret=tls.get("secretName", exp.get("tlsSecretName", "")),
                gateway_name=gw.get("name", ""),
                gateway_namespace=gw.get("namespace", ""),
                gateway_section=gw.get("sectionName", ""),
                annotations=dict(exp.get("annotations") or {}),
                tls_issuer=tls.get("issuer", ""),
                tls_issuer_kind=tls.get("issuerKind", "ClusterIssuer"),
                tls_listener=tls.get("listener", ""),
            )
        defaults = cls(EnvironmentName(environment), pin)
        return cls(
            environment=EnvironmentName(environment),
            pin=pin,
            replicas=doc.get("replicas", 1),
            autoscaling=Autoscaling(
                enabled=auto.get("enabled", bool(auto) or "replicas" not in doc),
                min_replicas=auto.get("minReplicas", 1),
                max_replicas=auto.get("maxReplicas", 10),
                target_cpu=auto.get("targetCPUUtilization", 70),
                target_in_flight=auto.get("targetInFlight"),
                scale_down_stabilization=auto.get("scaleDownStabilizationSeconds", 300),
                metric=auto.get("metric", "cpu"),
                target_concurrency=auto.get("targetConcurrency"),
            ),
            requests=RequestSettings(
                max_concurrent=req.get("maxConcurrent", 1),
                queue_size=req.get("queueSize", 10),
                queue_timeout=float(req.get("queueTimeoutSeconds", 5)),
                timeout=float(req.get("timeoutSeconds", 5)),
                max_body_bytes=req.get("maxBodyBytes", 10 * 1024 * 1024),
                reject_status=req.get("rejectStatus", 503),
            ),
            auth=AuthSpec(
                mode=auth.get("mode", "secret"),
                secret_name=auth.get("secretName", f"{pin.model}-keys"),
                external=ExternalSecretSpec(
                    store_name=ext["storeRef"]["name"],
                    store_kind=ext["storeRef"].get("kind", "ClusterSecretStore"),
                    remote_key=ext["remoteKey"],
                    refresh_interval=ext.get("refreshInterval", "1h"),
                )
                if ext
                else None,
            ),
            logging=tel.get("logging", True),
            capture=CaptureSpec(
                enabled=cap.get("enabled", False),
                sampling=float(cap.get("sampling", 1.0)),
                path=sink.get("path", "/var/lib/gitops-ml/capture"),
                volume_claim=sink.get("volumeClaim", ""),
                max_file_bytes=sink.get("maxFileBytes", 64 * 1024 * 1024),
                sink_uri=sink.get("uri", ""),
                sink_endpoint=sink.get("endpoint", ""),
                sink_region=sink.get("region", ""),
                credentials_secret=sink.get("credentialsSecret", ""),
            ),
            monitoring=MonitoringSpec(
                min_records=mon.get("minRecords", 100),
                drift=DriftThresholds(psi=float(drift.get("psi", 0.2)), p_value=float(drift.get("pValue", 0.01))),
                refused_ratio=float(mon.get("refusedRatio", 0.05)),
                error_ratio=float(mon.get("errorRatio", 0.01)),
                latency_p99_seconds=float(mon["latencyP99Seconds"]) if "latencyP99Seconds" in mon else None,
                alerts=AlertThresholds(
                    error_ratio=float(alerts["errorRatio"]) if "errorRatio" in alerts else None,
                    latency_p99_seconds=float(alerts["latencyP99Seconds"]) if "latencyP99Seconds" in alerts else None,
                    rejected_ratio=float(alerts.get("rejectedRatio", 0.01)),
                    duration=str(alerts.get("for", "5m")),
                ),
            ),
            resource_requests={k: str(v) for k, v in (res.get("requests") or defaults.resource_requests).items()},
            resource_limits={k: str(v) for k, v in (res.get("limits") or defaults.resource_limits).items()},
            startup_probe=probe("startup", defaults.startup_probe),
            liveness_probe=probe("liveness", defaults.liveness_probe),
            readiness_probe=probe("readiness", defaults.readiness_probe),
            exposure=exposure,
            network_policy=net.get("enabled", True),
            allow_from=tuple(net.get("allowFrom") or ()),
            allow_egress=net.get("allowEgress", False),
            pdb_max_unavailable=(doc.get("disruptionBudget") or {}).get("maxUnavailable", 1),
            env=dict(doc.get("env") or {}),
            node_selector=dict(doc.get("nodeSelector") or {}),
            labels=dict(doc.get("labels") or {}),
            annotations=dict(doc.get("annotations") or {}),
            rollout=RolloutSpec.from_doc(doc["rollout"]) if doc.get("rollout") else RolloutSpec(),
            service_account_annotations=dict((doc.get("serviceAccount") or {}).get("annotations") or {}),
        )

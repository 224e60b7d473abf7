"""Kubernetes objects of one endpoint as plain dicts: the model's base and its environment overlay.

The base holds what depends on the model only (Deployment skeleton, Service, ServiceAccount);
the overlay adds what depends on the environment and version (image tag, settings, scaling, keys,
exposure). Names, selectors, host and path never depend on the version, so URL and keys survive
updates. No secret value is ever produced here: keys come from a Secret referenced by name.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from gitops_ml.history.tags import format_tag
from gitops_ml.render import monitoring
from gitops_ml.render.planning import Endpoint, ResolvedVersion
from gitops_ml.rollout.queries import concurrency_query
from gitops_ml.serving import settings as srv
from gitops_ml.types import ModelName, Probe, RepositorySpec

Obj = dict[str, Any]

MANAGED_BY = "gitops-ml"
ENV_LABEL = "gitops-ml.dev/environment"
# What `gitops-ml status` reads from a pod template (and so from every ReplicaSet) to tell which
# version runs. The label is the version made label-safe; the annotations keep exact values.
VERSION_LABEL = "app.kubernetes.io/version"
VERSION_ANNOTATION = "gitops-ml.dev/version"
IMAGE_TAG_ANNOTATION = "gitops-ml.dev/image-tag"
# The version's git revision by name: the tag `<model>@v<version>` that CI puts on the commit that
# registered it. Not a commit id: a render is committed, so it cannot name the commit that brings a
# new version (its own), and writing a pinned version's commit only once that version is read from
# history would change (and restart) that environment's pods when the working tree moves past it.
REVISION_ANNOTATION = "gitops-ml.dev/revision"
CONTAINER = "model"
RUN_AS = 10001
SERVICE_PORT = 80
SETTINGS_SUFFIX = "-settings"
KEYS_VOLUME = "keys"
SCRATCH_VOLUME = "scratch"
CAPTURE_VOLUME = "capture"
PRESTOP_SECONDS = 5
# ingress-nginx's default namespace; other controllers are allowed through networkPolicy.allowFrom
INGRESS_CONTROLLER_NAMESPACE = "ingress-nginx"


def selector(model: ModelName) -> dict[str, str]:
    # the selector of a Deployment is immutable: only labels that never change belong in it
    return {"app.kubernetes.io/name": model}


def base_labels(repo: RepositorySpec, model: ModelName) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": model,
        "app.kubernetes.io/component": "model-endpoint",
        "app.kubernetes.io/part-of": repo.name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def image_name(repo: RepositorySpec, model: ModelName) -> str:
    """The untagged image of the base; each overlay sets its content-addressed tag."""
    return f"{repo.registry.rstrip('/')}/{model}"


def _meta(name: str, labels: dict[str, str]) -> Obj:
    return {"name": name, "labels": dict(labels)}


def _probe(path: str, probe: Probe) -> Obj:
    return {
        "httpGet": {"path": path, "port": "http"},
        "initialDelaySeconds": probe.initial_delay,
        "periodSeconds": probe.period,
        "timeoutSeconds": probe.timeout,
        "failureThreshold": probe.failure_threshold,
    }


# --- base: apps/base/<model>/ -----------------------------------------------------------------


def base_deployment(repo: RepositorySpec, model: ModelName) -> Obj:
    labels = base_labels(repo, model)
    container: Obj = {
        "name": CONTAINER,
        "image": image_name(repo, model),
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": srv.PORT, "protocol": "TCP"}],
        "envFrom": [{"configMapRef": {"name": f"{model}{SETTINGS_SUFFIX}"}}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": SCRATCH_VOLUME, "mountPath": srv.SCRATCH_DIR}],
        # the Service stops sending traffic a moment after readiness fails; keep serving meanwhile
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}},
    }
    pod: Obj = {
        "serviceAccountName": model,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": SCRATCH_VOLUME, "emptyDir": {"sizeLimit": "256Mi"}}],
    }
    if repo.pull_secret:
        pod["imagePullSecrets"] = [{"name": repo.pull_secret}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(model, labels),
        "spec": {
            "selector": {"matchLabels": selector(model)},
            "revisionHistoryLimit": 5,
            # never drop below the wanted capacity while a new version rolls out
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
            "template": {
                "metadata": {
                    "labels": dict(labels),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(srv.PORT),
                        "prometheus.io/path": srv.METRICS_PATH,
                    },
                },
                "spec": pod,
            },
        },
    }


def base_service(repo: RepositorySpec, model: ModelName) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(model, base_labels(repo, model)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(model),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def base_service_account(repo: RepositorySpec, model: ModelName) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(model, base_labels(repo, model)),
        "automountServiceAccountToken": False,
    }


# --- overlay: apps/<env>/<model>/ ---------------------------------------------------------------


def endpoint_labels(ep: Endpoint) -> dict[str, str]:
    """Labels the overlay adds to every object (through the kustomization's `labels`)."""
    labels = dict(ep.environment.labels)
    labels.update(ep.deployment.labels)
    labels[ENV_LABEL] = ep.environment.name
    return labels


def env_from(ep: Endpoint, settings: str) -> list[Obj]:
    """The container's envFrom: its settings ConfigMap, and the sink's credentials Secret when the
    deployment file names one (its values are never rendered; the server reads AWS_* from its environment)."""
    sources: list[Obj] = [{"configMapRef": {"name": settings}}]
    secret = ep.deployment.capture.credentials_secret
    if secret:
        sources.append({"secretRef": {"name": secret}})
    return sources


def termination_grace(ep: Endpoint) -> int:
    """preStop, then SIGTERM: the server drains, stops gracefully, flushes, and with a sink uploads what is left."""
    dep = ep.deployment
    seconds = PRESTOP_SECONDS + int(srv.KUBERNETES_DRAIN_SECONDS + srv.grace_seconds(dep)) + srv.FLUSH_SECONDS
    if dep.capture.enabled and dep.capture.sink_uri:
        seconds += int(srv.SINK_FLUSH_SECONDS)
    return seconds


def version_label(version: ResolvedVersion) -> str:
    """app.kubernetes.io/version of a version's pods (`+build` is not allowed in a label value)."""
    return str(version.model.version).replace("+", "_")


def deployment_patch(ep: Endpoint, version: ResolvedVersion | None = None) -> Obj:
    """Strategic-merge patch of the base Deployment: scale, resources, probes, keys, capture
    (of `version`, by default the stable one)."""
    dep = ep.deployment
    model = ep.model
    container: Obj = {
        "name": CONTAINER,
        "resources": {"requests": dict(dep.resource_requests), "limits": dict(dep.resource_limits)},
        # a slow model load is covered by the startup probe; liveness starts only after it
        "startupProbe": _probe(srv.READINESS_PATH, dep.startup_probe),
        "livenessProbe": _probe(srv.LIVENESS_PATH, dep.liveness_probe),
        "readinessProbe": _probe(srv.READINESS_PATH, dep.readiness_probe),
    }
    if dep.env:
        container["env"] = [{"name": k, "value": str(v)} for k, v in sorted(dep.env.items())]
    if dep.capture.credentials_secret:
        # envFrom has no merge key: the patch restates the settings' reference (kustomize still hashes its name)
        container["envFrom"] = env_from(ep, f"{model}{SETTINGS_SUFFIX}")
    mounts: list[Obj] = []
    volumes: list[Obj] = []
    if dep.auth.enabled:
        mounts.append({"name": KEYS_VOLUME, "mountPath": srv.KEYS_DIR, "readOnly": True})
        # a projected Secret volume is updated in place when the Secret changes: keys rotate without a restart
        volumes.append({"name": KEYS_VOLUME, "secret": {"secretName": dep.auth.secret_name, "defaultMode": 0o440}})
    if dep.capture.enabled:
        mounts.append({"name": CAPTURE_VOLUME, "mountPath": dep.capture.path})
        if dep.capture.volume_claim:
            volumes.append({"name": CAPTURE_VOLUME, "persistentVolumeClaim": {"claimName": dep.capture.volume_claim}})
        else:
            volumes.append({"name": CAPTURE_VOLUME, "emptyDir": {"sizeLimit": "1Gi"}})
    if mounts:
        container["volumeMounts"] = mounts
    pod: Obj = {
        "containers": [container],
        # the kubelet counts preStop, then SIGTERM: the server drains, stops gracefully, then flushes
        "terminationGracePeriodSeconds": termination_grace(ep),
    }
    if volumes:
        pod["volumes"] = volumes
    if dep.node_selector:
        pod["nodeSelector"] = dict(dep.node_selector)
    resolved = version or ep.version
    template: Obj = {
        "metadata": {
            "labels": {VERSION_LABEL: version_label(resolved)},
            # the user's annotations cannot hide what status reads
            "annotations": {
                **dep.annotations,
                VERSION_ANNOTATION: str(resolved.model.version),
                IMAGE_TAG_ANNOTATION: resolved.image.rsplit(":", 1)[1],
                REVISION_ANNOTATION: format_tag(model, resolved.model.version),
            },
        },
        "spec": pod,
    }
    spec: Obj = {"template": template}
    if not dep.autoscaling.enabled:
        # with an HPA the replica count is left out so that Argo CD/Flux do not fight the autoscaler
        spec["replicas"] = dep.replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": model}, "spec": spec}


def service_account_patch(ep: Endpoint) -> Obj:
    """The pod's identity for the cloud (IRSA's eks.amazonaws.com/role-arn, GKE's
    iam.gke.io/gcp-service-account): the sink then needs no credentials Secret."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": ep.model, "annotations": dict(ep.deployment.service_account_annotations)},
    }


def scale_target(ep: Endpoint) -> Obj:
    """What an autoscaler scales: the endpoint's Deployment, or its Rollout with Argo Rollouts."""
    if ep.argo_rollouts:
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": ep.model}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": ep.model}


def hpa(ep: Endpoint, target: Obj | None = None) -> Obj:
    auto = ep.deployment.autoscaling
    metrics: list[Obj] = [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": auto.target_cpu}}}
    ]
    if auto.target_in_flight is not None:
        metrics.append(
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": srv.IN_FLIGHT_METRIC},
                    "target": {"type": "AverageValue", "averageValue": _quantity(auto.target_in_flight)},
                },
            }
        )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": ep.model},
        "spec": {
            "scaleTargetRef": target or scale_target(ep),
            "minReplicas": auto.min_replicas,
            "maxReplicas": auto.max_replicas,
            "metrics": metrics,
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": auto.scale_down_stabilization}},
        },
    }


def scaled_object(ep: Endpoint, *, track: str = "", target: Obj | None = None) -> Obj:
    """KEDA: replicas follow requests in flight plus queued per replica (the signal KServe and
    Knative scale on), read from Prometheus; KEDA makes and owns the HorizontalPodAutoscaler."""
    dep = ep.deployment
    auto = dep.autoscaling
    per_replica = auto.target_concurrency if auto.target_concurrency is not None else float(dep.requests.max_concurrent)
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": ep.model},
        "spec": {
            "scaleTargetRef": target or scale_target(ep),
            "minReplicaCount": auto.min_replicas,
            "maxReplicaCount": auto.max_replicas,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": auto.scale_down_stabilization}}}},
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": ep.environment.prometheus,
                        "query": concurrency_query(ep.model, ep.environment.name, track),
                        "threshold": _decimal(per_replica),
                    },
                }
            ],
        },
    }


def _decimal(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _quantity(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{int(round(value * 1000))}m"


def pdb(ep: Endpoint) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": ep.model},
        "spec": {"maxUnavailable": ep.deployment.pdb_max_unavailable, "selector": {"matchLabels": selector(ep.model)}},
    }


def network_policy(ep: Endpoint) -> Obj:
    dep = ep.deployment
    peers: list[Obj]
    if dep.allow_from:
        peers = [_plain(p) for p in dep.allow_from]
    else:
        peers = [{"podSelector": {}}]
        exposure = dep.exposure
        if exposure is not None:
            ns = exposure.gateway_namespace if exposure.type == "httproute" else INGRESS_CONTROLLER_NAMESPACE
            if exposure.type == "httproute" and not ns:
                ns = ep.environment.namespace
            if ns != ep.environment.namespace:
                peers.append({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}})
    egress: list[Obj]
    if dep.allow_egress:
        egress = [{}]
    else:
        # DNS only: a model that fetches at run time must say so with allowEgress
        egress = [{"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]
        if dep.capture.enabled and dep.capture.sink_uri:
            # the capture sink: its port, to any address (an object store's addresses are not fixed)
            egress.append({"ports": [{"port": sink_port(dep.capture.sink_endpoint), "protocol": "TCP"}]})
    ingress_rules = [{"from": peers, "ports": [{"port": "http", "protocol": "TCP"}]}]
    if ep.environment.monitoring.enabled:
        # the PodMonitor's scrapes come from Prometheus' namespace, whatever allowFrom says
        ingress_rules.append(monitoring.network_peer(ep))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": ep.model},
        "spec": {
            "podSelector": {"matchLabels": selector(ep.model)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress_rules,
            "egress": egress,
        },
    }


def sink_port(endpoint: str) -> int:
    """The TCP port the capture sink is reached on: the endpoint URL's, else HTTPS (AWS S3)."""
    if not endpoint:
        return 443
    parsed = urlsplit(endpoint)
    try:
        port = parsed.port
    except ValueError:
        port = None
    return port or (80 if parsed.scheme == "http" else 443)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def ingress(ep: Endpoint) -> Obj:
    exp = ep.deployment.exposure
    assert exp is not None
    spec: Obj = {
        "rules": [
            {
                "host": exp.host,
                "http": {
                    "paths": [
                        {
                            "path": exp.path,
                            "pathType": "Prefix",
                            "backend": {"service": {"name": ep.model, "port": {"name": "http"}}},
                        }
                    ]
                },
            }
        ]
    }
    if exp.ingress_class:
        spec["ingressClassName"] = exp.ingress_class
    if exp.tls_secret:
        spec["tls"] = [{"hosts": [exp.host], "secretName": exp.tls_secret}]
    meta: Obj = {"name": ep.model}
    annotations = dict(exp.annotations)
    if exp.tls_issuer:
        # cert-manager's ingress-shim makes and renews the Secret for the Ingress's tls hosts
        kind = "cluster-issuer" if exp.tls_issuer_kind == "ClusterIssuer" else "issuer"
        annotations[f"cert-manager.io/{kind}"] = exp.tls_issuer
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


def http_route(ep: Endpoint, backend_refs: list[Obj] | None = None, filters: list[Obj] | None = None) -> Obj:
    """The endpoint's route; `backend_refs` and `filters` split and mirror traffic to candidates."""
    exp = ep.deployment.exposure
    assert exp is not None
    parent: Obj = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": exp.gateway_name}
    if exp.gateway_namespace:
        parent["namespace"] = exp.gateway_namespace
    if exp.gateway_section or exp.tls_listener:
        # TLS ends at the Gateway: the route attaches to its HTTPS listener, which holds the certificate
        parent["sectionName"] = exp.tls_listener or exp.gateway_section
    meta: Obj = {"name": ep.model}
    if exp.annotations:
        meta["annotations"] = dict(exp.annotations)
    refs = backend_refs if backend_refs is not None else [{"name": ep.model, "port": SERVICE_PORT}]
    rule: Obj = {"matches": [{"path": {"type": "PathPrefix", "value": exp.path}}], "backendRefs": refs}
    if filters:
        rule["filters"] = filters
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": meta,
        "spec": {"parentRefs": [parent], "hostnames": [exp.host], "rules": [rule]},
    }


def external_secret(ep: Endpoint) -> Obj:
    auth = ep.deployment.auth
    ext = auth.external
    assert ext is not None
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": auth.secret_name},
        "spec": {
            "refreshInterval": ext.refresh_interval,
            "secretStoreRef": {"name": ext.store_name, "kind": ext.store_kind},
            "target": {"name": auth.secret_name, "creationPolicy": "Owner"},
            "data": [
                {"secretKey": key, "remoteRef": {"key": ext.remote_key, "property": key}} for key in ("primary", "secondary")
            ],
        },
    }

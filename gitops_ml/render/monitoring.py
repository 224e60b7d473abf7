"""Monitoring objects of one endpoint for the Prometheus Operator: a PodMonitor and a PrometheusRule.
Neither names a version literally (alerts take it from the series), so a version bump leaves them as they are.

Every expression names only series that `gitops-ml serve` exports (serving/telemetry.py, sink.py), each
carrying the identity labels model, environment, version and track, plus Prometheus' own `up` of the
PodMonitor's targets (job = the model, set by a relabeling). Thresholds come from the deployment file
(`monitoring.alerts`, the request timeout, the probes); annotations name model, version and environment.
Plain dicts; no I/O. The Grafana dashboard is render/dashboard.py's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gitops_ml.render.planning import Endpoint
from gitops_ml.serving import settings as srv
from gitops_ml.types import LATENCY_SHARE

Obj = dict[str, Any]

# series of the scoring server (a counter `x` is exposed as `x_total`)
REQUESTS = "gitops_ml_requests_total"
LATENCY_BUCKETS = "gitops_ml_request_duration_seconds_bucket"
REJECTED = "gitops_ml_rejected_total"
READY = "gitops_ml_ready"
IN_FLIGHT = srv.IN_FLIGHT_METRIC
QUEUE_DEPTH = "gitops_ml_queue_depth"
ARRIVING = "gitops_ml_arriving"
CAPTURE_DROPPED = "gitops_ml_capture_dropped_total"
UPLOADED = "gitops_ml_capture_uploaded_records_total"
PENDING = "gitops_ml_capture_pending_records"
UPLOAD_DROPPED = "gitops_ml_capture_upload_dropped_records_total"
UPLOAD_FAILURES = "gitops_ml_capture_upload_failures_total"
UP = "up"  # Prometheus' own: 0 when a target's scrape fails

# what identifies one version of one endpoint in an alert
BY = "model, environment, version, track"
WINDOW = "5m"  # rate window: ten scrapes at the PodMonitor's interval
SCRAPE_INTERVAL = "30s"
CAPTURE_WINDOW = "10m"
# capacity refusals (answered with rejectStatus or 503): a full queue, a wait in it past
# queueTimeoutSeconds, or the memory set aside for request bodies spent
CAPACITY_REASONS = "body_budget|queue_full|queue_timeout"
# an outage pages quickly, yet not for a pod that restarts once
NOT_READY_FOR = "2m"
NOT_SHADOW = 'track!="shadow"'  # a shadow answers no caller


def metrics_job(ep: Endpoint) -> str:
    """The `job` label of the endpoint's targets (the PodMonitor sets it; the rules select by it)."""
    return str(ep.model)


def pod_names(ep: Endpoint) -> list[str]:
    """`app.kubernetes.io/name` of every pod of the endpoint: stable (or the Rollout's), canary, shadow.
    All three always: adding a candidate then changes no monitoring object."""
    return [ep.model, f"{ep.model}-canary", f"{ep.model}-shadow"]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def endpoint_selector(ep: Endpoint, *extra: str) -> str:
    """{model="m",environment="e",...}: every version and track of the endpoint."""
    parts = [f'model="{_escape(ep.model)}"', f'environment="{_escape(ep.environment.name)}"', *extra]
    return "{" + ",".join(parts) + "}"


def up_selector(ep: Endpoint) -> str:
    return "{" + f'namespace="{_escape(ep.environment.namespace)}",job="{_escape(metrics_job(ep))}"' + "}"


def number(value: float) -> str:
    """A PromQL number literal without float noise (0.01, 1.6, 2)."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def duration_seconds(seconds: float) -> str:
    """A Prometheus duration in whole minutes, rounded up (at least 1m)."""
    return f"{max(1, math.ceil(seconds / 60))}m"


def parse_duration(text: str) -> float:
    unit = {"s": 1, "m": 60, "h": 3600}[text[-1]]
    return float(text[:-1]) * unit


# --- PodMonitor ------------------------------------------------------------------------------------


def pod_monitor(ep: Endpoint) -> Obj:
    """Scrapes every pod of the endpoint directly, ready or not: readiness lost is seen only if a
    not-ready pod is still scraped (a ServiceMonitor follows the Service's ready endpoints), and the
    candidates' pods sit behind Services of their own."""
    mon = ep.environment.monitoring
    meta: Obj = {"name": ep.model}
    if mon.labels:
        meta["labels"] = dict(mon.labels)
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": meta,
        "spec": {
            "selector": {
                "matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In", "values": pod_names(ep)}]
            },
            "podMetricsEndpoints": [
                {
                    "port": "http",
                    "path": srv.METRICS_PATH,
                    "interval": SCRAPE_INTERVAL,
                    # the server's own labels (model, version, environment, track) never clash with
                    # target labels; `job` is set so that the rules' `up` needs no operator convention
                    "relabelings": [{"action": "replace", "targetLabel": "job", "replacement": metrics_job(ep)}],
                }
            ],
        },
    }


# --- PrometheusRule --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """The limits of one endpoint's alerts, resolved from the deployment file's defaults."""

    error_ratio: float
    latency_p99_seconds: float
    rejected_ratio: float
    duration: str
    replicas_for: str


def thresholds(ep: Endpoint) -> Thresholds:
    dep = ep.deployment
    alerts = dep.monitoring.alerts
    error_ratio = alerts.error_ratio if alerts.error_ratio is not None else dep.monitoring.error_ratio
    latency = (
        alerts.latency_p99_seconds
        if alerts.latency_p99_seconds is not None
        else round(dep.requests.timeout * LATENCY_SHARE, 3)
    )
    # a pod is rightly not ready while its model loads: the startup probe's whole budget, then readiness's
    startup, ready = dep.startup_probe, dep.readiness_probe
    starting = (
        startup.initial_delay + startup.period * startup.failure_threshold + ready.period * ready.failure_threshold
    )
    replicas_for = duration_seconds(max(starting, parse_duration(alerts.duration)))
    return Thresholds(error_ratio, latency, alerts.rejected_ratio, alerts.duration, replicas_for)


def error_ratio_expr(ep: Endpoint, by: str = BY, window: str = WINDOW) -> str:
    # 503 is left out: admission control (queue full) and a not-ready server answer it, and they
    # alert of their own; one cause should page once
    errors = endpoint_selector(ep, 'route="score"', 'status=~"5.."', 'status!="503"')
    every = endpoint_selector(ep, 'route="score"')
    return f"sum by ({by}) (rate({REQUESTS}{errors}[{window}])) / sum by ({by}) (rate({REQUESTS}{every}[{window}]))"


def latency_expr(ep: Endpoint, quantile: float, by: str = BY, window: str = WINDOW) -> str:
    return f"histogram_quantile({number(quantile)}, sum by (le, {by}) (rate({LATENCY_BUCKETS}{endpoint_selector(ep)}[{window}])))"


def rejected_ratio_expr(ep: Endpoint, by: str = BY, window: str = WINDOW) -> str:
    refused = endpoint_selector(ep, f'reason=~"{CAPACITY_REASONS}"')
    every = endpoint_selector(ep, 'route="score"')
    return f"sum by ({by}) (rate({REJECTED}{refused}[{window}])) / sum by ({by}) (rate({REQUESTS}{every}[{window}]))"


def _who(ep: Endpoint) -> str:
    """`iris 1.0.0 (canary) in prod`, from the alert's labels (the version is the series')."""
    return f"{ep.model} {{{{ $labels.version }}}}{{{{ if $labels.track }}}} ({{{{ $labels.track }}}}){{{{ end }}}} in {ep.environment.name}"


def _alert(ep: Endpoint, name: str, expr: str, duration: str, severity: str, summary: str, description: str) -> Obj:
    mon = ep.environment.monitoring
    annotations = {"summary": summary, "description": description}
    if mon.runbook_url:
        annotations["runbook_url"] = f"{mon.runbook_url}#{name.lower()}"
    rule: Obj = {
        "alert": name,
        "expr": expr,
        # literal labels: an alert whose expression keeps none (no series at all) still routes
        "labels": {
            "severity": severity,
            "model": ep.model,
            "environment": ep.environment.name,
            "namespace": ep.environment.namespace,
        },
        "annotations": annotations,
    }
    if duration:
        rule["for"] = duration
    return rule


def alert_rules(ep: Endpoint) -> list[Obj]:
    """The endpoint's alerts, in a fixed order; capture alerts only when the endpoint captures."""
    dep = ep.deployment
    limits = thresholds(ep)
    who = _who(ep)
    timeout = dep.requests.timeout
    auto = dep.autoscaling
    capacity = (
        f"autoscaling allows up to {auto.max_replicas} replicas"
        if auto.enabled
        else f"{dep.replicas} replicas, no autoscaling"
    )
    rules = [
        _alert(
            ep,
            "GitopsMlErrorRatioHigh",
            f"({error_ratio_expr(ep)}) > {number(limits.error_ratio)}",
            limits.duration,
            "critical",
            f"{who}: {{{{ $value | humanizePercentage }}}} of scoring requests fail",
            f"More than {number(limits.error_ratio * 100)} % of the scoring requests of {who} were answered with a server error "
            f"(500: run() raised; 504: longer than the {number(timeout)} s request timeout) over {WINDOW}. "
            "The pods' logs carry the request ids of the failures; a new version that fails is rolled back with `gitops-ml rollback`.",
        ),
        _alert(
            ep,
            "GitopsMlLatencyP99High",
            f"{latency_expr(ep, 0.99)} > {number(limits.latency_p99_seconds)}",
            limits.duration,
            "warning",
            f"{who}: p99 latency {{{{ $value | humanizeDuration }}}}",
            f"The 99th-percentile latency of {who} was over {number(limits.latency_p99_seconds)} s for {limits.duration}; "
            f"requests are cut off at {number(timeout)} s (504). Check CPU throttling and queueing "
            f"(requests.maxConcurrent {dep.requests.max_concurrent}, queueSize {dep.requests.queue_size}) on the endpoint's dashboard.",
        ),
        _alert(
            ep,
            "GitopsMlRequestsRejected",
            f"({rejected_ratio_expr(ep)}) > {number(limits.rejected_ratio)}",
            limits.duration,
            "warning",
            f"{who}: {{{{ $value | humanizePercentage }}}} of scoring requests refused for capacity",
            f"Admission control refused more than {number(limits.rejected_ratio * 100)} % of the scoring requests of {who} "
            f"over {WINDOW}: the queue ({dep.requests.queue_size} per replica) was full ({dep.requests.reject_status}), a request waited "
            f"longer than {number(dep.requests.queue_timeout)} s in it (503), or request bodies held all the memory set aside for them. "
            f"Capacity: {capacity}; raise it, or requests.queueSize.",
        ),
        _alert(
            ep,
            "GitopsMlReplicasNotReady",
            f"count by (namespace) (({UP}{up_selector(ep)} == 0) or on (namespace, pod) ({READY}{endpoint_selector(ep)} == 0)) > 0",
            limits.replicas_for,
            "warning",
            f"{ep.model} in {ep.environment.name}: {{{{ $value }}}} replica(s) not ready",
            f"{{{{ $value }}}} pod(s) of {ep.model} in {ep.environment.name} (namespace {ep.environment.namespace}) cannot be scraped or report "
            f"not ready for {limits.replicas_for}, longer than a model load may take (startup probe). "
            "`kubectl describe pod` and the pod's log say why (init() failed, out of memory, image pull).",
        ),
        _alert(
            ep,
            "GitopsMlEndpointNotReady",
            f"(sum({READY}{endpoint_selector(ep, NOT_SHADOW)}) or vector(0)) == 0",
            NOT_READY_FOR,
            "critical",
            f"{ep.model} in {ep.environment.name} has no ready replica",
            f"No pod of {ep.model} in {ep.environment.name} reports ready, or Prometheus scrapes none of them, "
            f"for {NOT_READY_FOR}: callers get errors. Check the pods (`gitops-ml status --env {ep.environment.name}`), "
            "and that the Prometheus selects this PodMonitor (environments.<env>.monitoring.labels).",
        ),
    ]
    capture = dep.capture
    if capture.enabled:
        rules.append(
            _alert(
                ep,
                "GitopsMlCaptureDropped",
                f"sum by ({BY}) (increase({CAPTURE_DROPPED}{endpoint_selector(ep)}[{CAPTURE_WINDOW}])) > 0",
                "",
                "warning",
                f"{who}: capture records dropped",
                f"{{{{ $value | humanize }}}} capture records of {who} were dropped in the last {CAPTURE_WINDOW} "
                f"(the capture volume at {capture.path} is full or slow): drift reports miss them.",
            )
        )
    if capture.enabled and capture.sink_uri:
        rules += [
            _alert(
                ep,
                "GitopsMlCaptureUploadDropped",
                f"sum by ({BY}) (increase({UPLOAD_DROPPED}{endpoint_selector(ep)}[{CAPTURE_WINDOW}])) > 0",
                "",
                "warning",
                f"{who}: capture records lost before upload",
                f"{{{{ $value | humanize }}}} capture records of {who} vanished from the pod before their upload to {capture.sink_uri} "
                f"in the last {CAPTURE_WINDOW}.",
            ),
            _alert(
                ep,
                "GitopsMlCaptureUploadFailing",
                f"sum by ({BY}) (increase({UPLOAD_FAILURES}{endpoint_selector(ep)}[{CAPTURE_WINDOW}])) > 0 "
                f"and sum by ({BY}) (increase({UPLOADED}{endpoint_selector(ep)}[{CAPTURE_WINDOW}])) == 0",
                limits.duration,
                "warning",
                f"{who}: capture uploads to {capture.sink_uri} fail",
                f"Every upload of {who} to {capture.sink_uri} failed for {limits.duration}; records wait on the pod's volume "
                "(the dashboard's pending records) and are dropped when it fills. Check the bucket, the credentials "
                "(credentialsSecret or the pod's identity) and the NetworkPolicy's egress (networkPolicy.allowEgress).",
            ),
        ]
    return rules


def prometheus_rule(ep: Endpoint) -> Obj:
    mon = ep.environment.monitoring
    meta: Obj = {"name": ep.model}
    if mon.labels:
        meta["labels"] = dict(mon.labels)
    group = {"name": f"gitops-ml.{ep.environment.name}.{ep.model}", "rules": alert_rules(ep)}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": meta,
        "spec": {"groups": [group]},
    }


def network_peer(ep: Endpoint) -> Obj:
    """The NetworkPolicy rule that lets the environment's Prometheus scrape the metrics port."""
    ns = ep.environment.monitoring.prometheus_namespace
    return {
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}],
        "ports": [{"port": "http", "protocol": "TCP"}],
    }

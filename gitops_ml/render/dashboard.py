"""The Grafana dashboard of one endpoint, as JSON for a ConfigMap the Grafana sidecar loads.

Panels read the same series as the alerts (render/monitoring.py's names and selectors), per version
and track, with the Prometheus data source as a template variable so one file works in any Grafana.
Deterministic: the same endpoint gives the same bytes. No I/O.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from gitops_ml.render import monitoring as mon
from gitops_ml.render.planning import Endpoint

Obj = dict[str, Any]

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"
BY_VERSION = "version, track"
SCHEMA_VERSION = 39
WIDTH, HEIGHT = 12, 8
LEGEND_VERSION = "{{version}} {{track}}"


def dashboard_uid(ep: Endpoint) -> str:
    """Stable per endpoint, within Grafana's 40 characters whatever the names' lengths."""
    digest = hashlib.sha256(f"{ep.environment.name}/{ep.model}".encode()).hexdigest()[:16]
    return f"gitops-ml-{digest}"


def _target(expr: str, legend: str, ref: str) -> Obj:
    # the panel's data source applies to its queries: not repeated here
    return {"expr": expr, "legendFormat": legend, "refId": ref}


def _panel(
    title: str, unit: str, targets: list[tuple[str, str]], description: str, thresholds: tuple[float, ...] = ()
) -> Obj:
    """A time series panel; Grafana's defaults fill in the rest (a dashboard per endpoint adds up in git)."""
    defaults: Obj = {"unit": unit}
    if thresholds:
        steps: list[Obj] = [{"color": "green", "value": None}]
        steps += [{"color": color, "value": value} for color, value in zip(("orange", "red"), thresholds)]
        defaults["thresholds"] = {"mode": "absolute", "steps": steps}
        defaults["custom"] = {"thresholdsStyle": {"mode": "dashed"}}
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"tooltip": {"mode": "multi", "sort": "desc"}},
        "targets": [_target(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(targets)],
    }


def panels(ep: Endpoint) -> list[Obj]:
    """The panels, two a row, in reading order."""
    dep = ep.deployment
    limits = mon.thresholds(ep)
    sel = mon.endpoint_selector(ep)
    score = mon.endpoint_selector(ep, 'route="score"')
    out = [
        _panel(
            "Scoring requests per second, by status",
            "reqps",
            [(f"sum by (status) (rate({mon.REQUESTS}{score}[{RATE}]))", "{{status}}")],
            "Answers to POST /score of every version and track, by HTTP status.",
        ),
        _panel(
            "Error ratio (5xx but 503)",
            "percentunit",
            [(mon.error_ratio_expr(ep, BY_VERSION, RATE), LEGEND_VERSION)],
            "Share of scoring requests answered with 500 or 504; the dashed line is the alert's limit.",
            (limits.error_ratio,),
        ),
        _panel(
            "Latency p50 and p99",
            "s",
            [
                (mon.latency_expr(ep, 0.5, BY_VERSION, RATE), "p50 " + LEGEND_VERSION),
                (mon.latency_expr(ep, 0.99, BY_VERSION, RATE), "p99 " + LEGEND_VERSION),
            ],
            f"Scoring latency, arrival to answer; dashed: the p99 alert's limit, then the {dep.requests.timeout:g} s request timeout.",
            (limits.latency_p99_seconds, dep.requests.timeout),
        ),
        _panel(
            "In flight, queued and arriving",
            "short",
            [
                (f"sum by ({BY_VERSION}) ({mon.IN_FLIGHT}{sel})", "in flight " + LEGEND_VERSION),
                (f"sum by ({BY_VERSION}) ({mon.QUEUE_DEPTH}{sel})", "queued " + LEGEND_VERSION),
                (f"sum by ({BY_VERSION}) ({mon.ARRIVING}{sel})", "arriving " + LEGEND_VERSION),
            ],
            f"Requests being scored ({dep.requests.max_concurrent} at most per replica), waiting in the queue "
            f"({dep.requests.queue_size} per replica) and whose bodies are still arriving.",
        ),
        _panel(
            "Refused by admission control, by reason",
            "reqps",
            [(f"sum by (reason) (rate({mon.REJECTED}{sel}[{RATE}]))", "{{reason}}")],
            "Requests refused before scoring: queue_full, queue_timeout and body_budget are capacity; unauthorized and body_timeout the callers'.",
        ),
        _panel(
            "Replicas",
            "short",
            [
                (f"sum by (track) ({mon.READY}{sel})", "ready {{track}}"),
                (f"count({mon.UP}{mon.up_selector(ep)})", "scraped"),
                (f"count({mon.UP}{mon.up_selector(ep)} == 0)", "scrape failing"),
            ],
            "Pods that report ready (by track), pods Prometheus scrapes, and those whose scrape fails.",
        ),
    ]
    capture = dep.capture
    if capture.enabled:
        targets = [
            (
                f"sum by ({BY_VERSION}) (increase({mon.CAPTURE_DROPPED}{sel}[{RATE}]))",
                "dropped on the pod " + LEGEND_VERSION,
            )
        ]
        if capture.sink_uri:
            targets = [
                (f"sum by ({BY_VERSION}) (increase({mon.UPLOADED}{sel}[{RATE}]))", "uploaded " + LEGEND_VERSION),
                (f"sum by ({BY_VERSION}) ({mon.PENDING}{sel})", "pending " + LEGEND_VERSION),
                *targets,
                (
                    f"sum by ({BY_VERSION}) (increase({mon.UPLOAD_DROPPED}{sel}[{RATE}]))",
                    "lost before upload " + LEGEND_VERSION,
                ),
            ]
        out.append(
            _panel(
                "Capture records",
                "short",
                targets,
                "Captured records"
                + (f" uploaded to {capture.sink_uri}, waiting on the pod," if capture.sink_uri else "")
                + " and dropped.",
            )
        )
    for i, panel in enumerate(out):
        panel["id"] = i + 1
        panel["gridPos"] = {"h": HEIGHT, "w": WIDTH, "x": (i % 2) * WIDTH, "y": (i // 2) * HEIGHT}
    return out


def dashboard(ep: Endpoint) -> Obj:
    return {
        "uid": dashboard_uid(ep),
        "title": f"gitops-ml / {ep.environment.name} / {ep.model}",
        "description": f"Endpoint {ep.model} in {ep.environment.name} (namespace {ep.environment.namespace}), rendered by gitops-ml.",
        "tags": ["gitops-ml", ep.environment.name, ep.model],
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": SCHEMA_VERSION,
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "utc",
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                }
            ]
        },
        "annotations": {"list": []},
        "panels": panels(ep),
        "version": 1,
    }


def dashboard_json(ep: Endpoint) -> bytes:
    """The dashboard with sorted keys, one top-level key and one panel a line: a change to a panel is a
    one-line diff, and a fleet's dashboards stay small in git."""
    board = dashboard(ep)
    options = orjson.OPT_SORT_KEYS
    lines = []
    for key in sorted(board):
        if key == "panels":
            panels = [orjson.dumps(panel, option=options).decode() for panel in board[key]]
            lines.append('  "panels": [\n    ' + ",\n    ".join(panels) + "\n  ]")
        else:
            lines.append(f"  {orjson.dumps(key).decode()}: {orjson.dumps(board[key], option=options).decode()}")
    return ("{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8")

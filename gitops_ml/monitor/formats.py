"""A MonitorReport as data (for --format json) and as markdown (an issue, a PR comment or body).

Strings out, nothing printed; the markdown is what the scheduled workflow posts and what a
retraining pull request carries as its evidence.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from gitops_ml.monitor.drift import FeatureDrift
from gitops_ml.monitor.report import MonitorReport, Status

MAX_NOTES = 20


def _number(value: float | None, digits: int = 6) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def _moment(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value is not None else None


def feature_data(f: FeatureDrift) -> dict[str, Any]:
    d = f.distribution
    return {
        "name": f.name, "path": f.path, "type": f.kind, "drifted": f.drifted, "psi": _number(f.psi), "test": f.test or None,
        "statistic": _number(f.statistic), "pValue": _number(f.p_value), "referenceCount": f.reference_count,
        "productionCount": f.production_count, "missing": f.missing, "referenceMean": _number(f.reference_mean),
        "productionMean": _number(f.production_mean),
        "bins": [{"label": label, "reference": _number(r, 4), "production": _number(p, 4)} for label, r, p in zip(d.labels, d.reference, d.production)],
    }


def report_data(report: MonitorReport) -> dict[str, Any]:
    r, t = report.records, report.thresholds
    return {
        "model": report.model, "environment": report.environment, "version": report.version, "status": report.status.value,
        "exitCode": report.exit_code, "headline": report.headline, "source": report.source, "generated": _moment(report.generated),
        "window": {"since": _moment(report.window.since), "until": _moment(report.window.until)},
        "records": {
            "files": r.files, "total": r.total, "scored": r.scored, "refused": r.refused, "errors": r.errors,
            "unreadable": r.unreadable, "otherVersions": dict(r.other_versions), "otherModels": r.other_models,
            "outsideWindow": r.outside_window, "newerFormat": r.newer_format, "first": _moment(r.first), "last": _moment(r.last),
        },
        "latencySeconds": None if report.latency is None else {"p50": _number(report.latency.p50), "p95": _number(report.latency.p95), "p99": _number(report.latency.p99)},
        "thresholds": {
            "minRecords": t.min_records, "psi": t.drift.psi, "pValue": t.drift.p_value, "refusedRatio": t.refused_ratio,
            "errorRatio": t.error_ratio, "latencyP99Seconds": report.latency_threshold,
        },
        "checks": [{"name": c.name, "summary": c.summary, "value": _number(c.value), "threshold": c.threshold, "crossed": c.crossed} for c in report.checks],
        "features": [feature_data(f) for f in report.features],
        "predictions": [feature_data(f) for f in report.predictions],
        "notes": list(report.notes),
    }


def window_text(report: MonitorReport) -> str:
    since = _moment(report.window.since) or "the first record"
    until = _moment(report.window.until) or "now"
    return f"{since} to {until}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _drift_rows(features: tuple[FeatureDrift, ...]) -> list[str]:
    rows = ["| | name | type | PSI | test | statistic | p-value | reference → production |", "|---|---|---|---:|---|---:|---:|---|"]
    for f in sorted(features, key=lambda f: (not f.drifted, -f.psi, f.name)):
        mark = "**drifted**" if f.drifted else "ok"
        means = ""
        if f.reference_mean is not None and f.production_mean is not None:
            means = f"mean {f.reference_mean:.4g} → {f.production_mean:.4g}"
        else:
            top = max(range(len(f.distribution.labels)), key=lambda i: abs(f.distribution.production[i] - f.distribution.reference[i]), default=None)
            if top is not None:
                d = f.distribution
                means = f"{d.labels[top]}: {d.reference[top]:.0%} → {d.production[top]:.0%}"
        p_value = f"{f.p_value:.2g}" if f.test else "–"
        statistic = f"{f.statistic:.3g}" if f.test else "–"
        rows.append(f"| {mark} | `{_cell(f.name)}` | {f.kind} | {f.psi:.3f} | {f.test or '–'} | {statistic} | {p_value} | {_cell(means)} |")
    return rows


def to_markdown(report: MonitorReport) -> str:
    """The report as GitHub-flavoured markdown."""
    r = report.records
    state = {Status.OK: "ok", Status.CROSSED: "threshold crossed", Status.NO_DATA: "no data"}[report.status]
    lines = [
        f"### gitops-ml monitor: {report.model} {report.version} in {report.environment} — {state}",
        "",
        report.headline,
        "",
        f"Window {window_text(report)}; {r.total} record(s) of this version: {r.scored} scored, {r.refused} refused, {r.errors} server error(s); "
        f"source `{report.source}`.",
        "",
    ]
    if report.checks:
        lines += ["| check | measured | threshold | |", "|---|---|---:|---|"]
        for c in report.checks:
            lines.append(f"| {c.name} | {_cell(c.summary)} | {c.threshold:g} | {'**crossed**' if c.crossed else 'ok'} |")
        lines.append("")
    if report.features:
        lines += ["#### Features", "", *_drift_rows(report.features), ""]
    if report.predictions:
        lines += ["#### Predictions", "", *_drift_rows(report.predictions), ""]
    if report.latency is not None:
        lat = report.latency
        lines += [f"Latency p50 {lat.p50 * 1000:.1f} ms, p95 {lat.p95 * 1000:.1f} ms, p99 {lat.p99 * 1000:.1f} ms.", ""]
    if report.notes:
        lines += ["<details><summary>Notes</summary>", ""]
        lines += [f"- {_cell(n)}" for n in report.notes[:MAX_NOTES]]
        if len(report.notes) > MAX_NOTES:
            lines.append(f"- … and {len(report.notes) - MAX_NOTES} more")
        lines += ["", "</details>", ""]
    t = report.thresholds
    lines.append(
        f"<sub>Drift: PSI ≥ {t.drift.psi:g} and p < {t.drift.p_value:g} (KS for numbers, chi-square for categories) against the version's reference profile; "
        f"judged from {t.min_records} scored records. Thresholds: `monitoring:` in deployments/{report.environment}/{report.model}.yaml.</sub>"
    )
    return "\n".join(lines) + "\n"

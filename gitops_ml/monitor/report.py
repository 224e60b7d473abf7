"""The monitor report: drift per feature and per prediction, request quality, and the thresholds
they were judged by. A result object for every reader: the CLI's table, JSON, markdown for an issue
or a pull request, and the HTML page. Pure: numbers in, dataclasses out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

import numpy as np

from gitops_ml.monitor.drift import FeatureDrift, categorical_drift, numeric_drift
from gitops_ml.monitor.profile import NUMERIC, Profile
from gitops_ml.monitor.records import Records, Window
from gitops_ml.types import MonitoringSpec

EXIT_OK = 0
EXIT_CROSSED = 1
EXIT_NO_DATA = 7  # not a failure: nothing to judge yet (a scheduled workflow treats it as "nothing to report")


class Status(str, Enum):
    OK = "ok"
    CROSSED = "threshold crossed"
    NO_DATA = "no data"


@dataclass(frozen=True)
class Check:
    """One threshold and what the window measured against it."""

    name: str  # drift | predictions | refused | errors | latency
    summary: str  # a sentence for people
    value: float
    threshold: float
    crossed: bool


@dataclass(frozen=True)
class Latency:
    p50: float
    p95: float
    p99: float  # seconds


@dataclass(frozen=True)
class MonitorReport:
    model: str
    environment: str
    version: str
    source: str  # where the records came from (a directory or a URI)
    window: Window
    thresholds: MonitoringSpec
    latency_threshold: float  # seconds: the deployment's latencyP99Seconds or its request timeout
    records: Records
    features: tuple[FeatureDrift, ...]
    predictions: tuple[FeatureDrift, ...]
    latency: Latency | None
    checks: tuple[Check, ...]
    notes: tuple[str, ...]
    status: Status
    generated: datetime

    @property
    def crossed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.crossed)

    @property
    def drifted(self) -> tuple[FeatureDrift, ...]:
        return tuple(f for f in (*self.features, *self.predictions) if f.drifted)

    @property
    def exit_code(self) -> int:
        return {Status.OK: EXIT_OK, Status.CROSSED: EXIT_CROSSED, Status.NO_DATA: EXIT_NO_DATA}[self.status]

    @property
    def headline(self) -> str:
        if self.status is Status.NO_DATA:
            return f"no data: {self.records.scored} scored record(s) of {self.model} {self.version} in the window, {self.thresholds.min_records} needed to judge drift"
        if self.status is Status.CROSSED:
            return "threshold crossed: " + "; ".join(c.summary for c in self.crossed)
        return f"ok: no drift in {len(self.features)} feature(s) and {len(self.predictions)} prediction(s), request quality within thresholds"


def judge(
    *, model: str, environment: str, version: str, source: str, window: Window, profile: Profile, records: Records,
    thresholds: MonitoringSpec, request_timeout: float, notes: list[str], generated: datetime,
) -> MonitorReport:
    """Compare the records with the profile and the thresholds."""
    drift = thresholds.drift
    features: list[FeatureDrift] = []
    predictions: list[FeatureDrift] = []
    for profiled, out, prefix in ((profile.features, features, ""), (profile.predictions, predictions, "output:")):
        for feature in profiled:
            values = records.values.get(prefix + str(feature.path))
            if values is None:
                continue
            if feature.kind == NUMERIC:
                out.append(numeric_drift(feature, values.numbers, values.missing, drift))
            else:
                out.append(categorical_drift(feature, values.categories, values.missing, drift))
    latency_threshold = thresholds.latency_p99_seconds or request_timeout
    latency = None
    if records.latency_ms.size:
        p50, p95, p99 = (float(v) / 1000 for v in np.percentile(records.latency_ms, [50, 95, 99]))
        latency = Latency(p50, p95, p99)
    checks: list[Check] = []
    if records.scored >= thresholds.min_records:
        for label, group in (("drift", features), ("predictions", predictions)):
            drifted = [f for f in group if f.drifted]
            worst = max((f.psi for f in group), default=0.0)
            what = "feature(s)" if label == "drift" else "prediction(s)"
            summary = (
                f"{len(drifted)} {what} drifted: " + ", ".join(f"{f.name} (PSI {f.psi:.2f})" for f in drifted)
                if drifted else f"no {what} drifted (largest PSI {worst:.2f})"
            )
            checks.append(Check(label, summary, worst, drift.psi, bool(drifted)))
    if records.total:
        refused = records.refused / records.total
        checks.append(Check("refused", f"{refused:.1%} of requests refused by the input schema (at most {thresholds.refused_ratio:.1%})", refused, thresholds.refused_ratio, refused > thresholds.refused_ratio))
        errors = records.errors / records.total
        checks.append(Check("errors", f"{errors:.1%} of requests failed with a server error (at most {thresholds.error_ratio:.1%})", errors, thresholds.error_ratio, errors > thresholds.error_ratio))
    if latency is not None:
        checks.append(Check("latency", f"p99 latency {latency.p99 * 1000:.0f} ms (at most {latency_threshold * 1000:.0f} ms)", latency.p99, latency_threshold, latency.p99 > latency_threshold))
    crossed = any(c.crossed for c in checks)
    if records.scored < thresholds.min_records and not crossed:
        status = Status.NO_DATA
    else:
        status = Status.CROSSED if crossed else Status.OK
    return MonitorReport(
        model=model, environment=environment, version=version, source=source, window=window, thresholds=thresholds,
        latency_threshold=latency_threshold, records=records, features=tuple(features), predictions=tuple(predictions),
        latency=latency, checks=tuple(checks), notes=tuple(notes), status=status, generated=generated,
    )

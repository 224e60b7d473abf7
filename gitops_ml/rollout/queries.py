"""PromQL that compares a candidate version with the stable version of one endpoint (pure).

The same strings go into a rendered Argo Rollouts AnalysisTemplate and into `gitops-ml canary
status`, so a pull request's check and the controller judge alike. Series are told apart by the
identity labels the server puts on every metric (serving/predictions.py): model, environment,
version, and track (a shadow's mirrored traffic never counts for the canary). Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gitops_ml.serving.predictions import CLASS, PREDICTIONS_METRIC, SCORE_METRIC
from gitops_ml.serving.settings import IN_FLIGHT_METRIC
from gitops_ml.types import Analysis, ManifestSpec, ModelName, Version

REQUESTS = "gitops_ml_requests_total"
LATENCY = "gitops_ml_request_duration_seconds"
QUEUE_DEPTH = "gitops_ml_queue_depth"
SCORE_ROUTE = 'route="score"'


class Measure(str, Enum):
    """What a criterion measures; the value names the AnalysisTemplate's metric."""

    ERROR_RATIO = "error-ratio"
    P99_LATENCY = "p99-latency"
    PREDICTION_SHIFT = "prediction-shift"


@dataclass(frozen=True)
class Criterion:
    """One limit the candidate must stay within, the query that measures it, and for the side-by-side
    view the same measure of the stable version (None when it compares the two, like the shift)."""

    measure: Measure
    title: str
    limit: float
    query: str
    stable_query: str | None
    unit: str  # ratio | seconds | distance

    @property
    def success_condition(self) -> str:
        """Argo Rollouts' condition on the query's result: no sample is neither success nor failure."""
        return f"len(result) > 0 && !isNaN(result[0]) && result[0] <= {_number(self.limit)}"

    @property
    def failure_condition(self) -> str:
        return f"len(result) > 0 && !isNaN(result[0]) && result[0] > {_number(self.limit)}"


@dataclass(frozen=True)
class Comparison:
    """The endpoint and the two versions a canary analysis compares."""

    model: ModelName
    environment: str
    stable: Version
    candidate: Version
    analysis: Analysis
    output_kind: str | None  # class | score | None when the two versions do not declare one output kind

    def selector(self, version: Version, *extra: str) -> str:
        return selector(self.model, self.environment, version, *extra)

    @property
    def requests_query(self) -> str:
        return requests_query(self, self.candidate)

    @property
    def stable_requests_query(self) -> str:
        return requests_query(self, self.stable)


def shared_output_kind(stable: ManifestSpec, candidate: ManifestSpec) -> str | None:
    """The output kind both versions declare (their predictions can be compared), else None."""
    if stable.output is None or candidate.output is None or stable.output.kind != candidate.output.kind:
        return None
    return stable.output.kind


def selector(model: str, environment: str, version: Version | None, *extra: str) -> str:
    """{model="m",environment="e",version="v",track!="shadow",...}: one version of one endpoint, its
    mirrored (shadow) traffic left out."""
    parts = [f'model="{_escape(model)}"']
    if environment:
        parts.append(f'environment="{_escape(environment)}"')
    if version is not None:
        parts.append(f'version="{_escape(str(version))}"')
    parts.append('track!="shadow"')
    parts.extend(extra)
    return "{" + ",".join(parts) + "}"


def requests_query(comparison: Comparison, version: Version) -> str:
    """Scoring requests a version answered over the window (how much evidence there is)."""
    window = comparison.analysis.window
    return f"sum(increase({REQUESTS}{comparison.selector(version, SCORE_ROUTE)}[{window}]))"


def error_ratio(comparison: Comparison, version: Version) -> str:
    window = comparison.analysis.window
    errors = comparison.selector(version, SCORE_ROUTE, 'status=~"5.."')
    every = comparison.selector(version, SCORE_ROUTE)
    # `or vector(0)`: no 5xx series at all is a ratio of 0, while no request at all stays empty
    return f"(sum(rate({REQUESTS}{errors}[{window}])) or vector(0)) / sum(rate({REQUESTS}{every}[{window}]))"


def p99_latency(comparison: Comparison, version: Version) -> str:
    window = comparison.analysis.window
    # the server observes scoring requests only in this histogram
    return f"histogram_quantile(0.99, sum by (le) (rate({LATENCY}_bucket{comparison.selector(version)}[{window}])))"


def prediction_shift(comparison: Comparison) -> str:
    """Classes: total variation distance between the two class distributions (half the sum of the
    absolute differences of each class's share). Scores: the largest gap between the two cumulative
    distributions at the histogram's bounds (Kolmogorov-Smirnov). Both 0 for alike, 1 for disjoint."""
    window = comparison.analysis.window
    cand, stable = comparison.selector(comparison.candidate), comparison.selector(comparison.stable)
    if comparison.output_kind == CLASS:
        metric = f"{PREDICTIONS_METRIC}_total"

        def share(sel: str) -> str:
            return f"(sum by (class) (rate({metric}{sel}[{window}])) / scalar(sum(rate({metric}{sel}[{window}]))))"

        c, s = share(cand), share(stable)
        # `or`: a class only one version predicts is matched with a share of 0 from the other; `and on()`:
        # no value at all (no data, never a shift) until both versions have predicted in the window
        both = f"and on() (sum(rate({metric}{cand}[{window}])) > 0) and on() (sum(rate({metric}{stable}[{window}])) > 0)"
        return f"0.5 * sum(abs(({c} - {s}) or {c} or (0 - {s}))) {both}"

    def cdf(sel: str) -> str:
        return f"(sum by (le) (rate({SCORE_METRIC}_bucket{sel}[{window}])) / scalar(sum(rate({SCORE_METRIC}_count{sel}[{window}]))))"

    return f"max(abs({cdf(cand)} - {cdf(stable)}))"


def criteria(comparison: Comparison) -> list[Criterion]:
    """The limits of the analysis, in a fixed order; the shift only when both versions declare one output kind."""
    analysis, cand, stable = comparison.analysis, comparison.candidate, comparison.stable
    out = [
        Criterion(Measure.ERROR_RATIO, "error ratio", analysis.max_error_ratio, error_ratio(comparison, cand), error_ratio(comparison, stable), "ratio"),
        Criterion(Measure.P99_LATENCY, "p99 latency", analysis.max_p99_seconds, p99_latency(comparison, cand), p99_latency(comparison, stable), "seconds"),
    ]
    if comparison.output_kind is not None:
        out.append(Criterion(Measure.PREDICTION_SHIFT, "prediction shift", analysis.max_prediction_shift, prediction_shift(comparison), None, "distance"))
    return out


def concurrency_query(model: str, environment: str, track: str) -> str:
    """Requests in flight plus queued over the replicas of one track of an endpoint: what a KEDA
    trigger divides by its per-replica target. `track` "" is the stable version (and, with Argo
    Rollouts, every ReplicaSet of its Rollout)."""
    sel = f'{{model="{_escape(model)}",environment="{_escape(environment)}",track="{_escape(track)}"}}'
    return f"sum({IN_FLIGHT_METRIC}{sel}) + sum({QUEUE_DEPTH}{sel})"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))

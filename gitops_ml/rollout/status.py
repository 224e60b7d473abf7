"""`canary status`: the analysis an AnalysisTemplate runs, run now against Prometheus, candidate and
stable side by side, and a verdict: pass, fail, or no data yet (the candidate has answered nothing in
the window, or a measure has no sample). Reads the deployment file and the two versions' manifests
(git, through the registry); asks Prometheus through adapters.prometheus. Never prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from gitops_ml.adapters.prometheus import Prometheus
from gitops_ml.errors import UsageError
from gitops_ml.registry.versions import resolve_model_version
from gitops_ml.repo.handle import Repository
from gitops_ml.repo.loading import load_tree
from gitops_ml.rollout.queries import Comparison, Criterion, criteria, shared_output_kind
from gitops_ml.types import DEPLOYMENTS_DIR, DeploymentSpec, ManifestSpec, ModelName, Version
from gitops_ml.validate.rules import require_specs, validate_tree
from gitops_ml.validate.specs import Specs


class Verdict(str, Enum):
    PASS = "pass"
    FAIL = "fail"
    NO_DATA = "no data"


@dataclass(frozen=True)
class Reading:
    """One criterion measured now: the candidate's value (judged), the stable version's (shown)."""

    criterion: Criterion
    candidate: float | None
    stable: float | None

    @property
    def verdict(self) -> Verdict:
        return judge(self.criterion, self.candidate)


@dataclass(frozen=True)
class CanaryStatus:
    comparison: Comparison
    weight: int
    prometheus: str
    candidate_requests: float | None
    stable_requests: float | None
    readings: tuple[Reading, ...]
    source_path: str

    @property
    def verdict(self) -> Verdict:
        return overall(self.candidate_requests, self.readings)


def judge(criterion: Criterion, value: float | None) -> Verdict:
    if value is None:
        return Verdict.NO_DATA
    return Verdict.PASS if value <= criterion.limit else Verdict.FAIL


def overall(candidate_requests: float | None, readings: tuple[Reading, ...]) -> Verdict:
    """Any criterion failed: fail; else no request or a criterion without samples: no data; else pass."""
    verdicts = [r.verdict for r in readings]
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    if not candidate_requests or Verdict.NO_DATA in verdicts:
        return Verdict.NO_DATA
    return Verdict.PASS


@dataclass(frozen=True)
class CanaryStatusRequest:
    repo: Repository
    model: str  # "" with every_canary
    environment: str  # "" with every_canary
    prometheus: str
    timeout: float = 10.0
    every_canary: bool = False  # every canary the working tree declares (model and environment empty)
    base: str = ""  # with every_canary: also the canaries at this revision that the working tree promotes


def find_deployment(specs: Specs, model: str, environment: str) -> tuple[DeploymentSpec, str]:
    """The deployment of model in environment and its path; UsageError naming what exists otherwise."""
    if environment not in specs.repository.environments:
        raise UsageError(f"unknown environment {environment!r} (declared: {', '.join(sorted(specs.repository.environments))})")
    for dep in specs.deployments:
        if dep.environment == environment and dep.model == model:
            return dep, specs.deployment_files[(dep.environment, dep.model)]
    where = sorted(d.environment for d in specs.deployments if d.model == model)
    raise UsageError(f"{model} is not deployed to {environment!r}: {DEPLOYMENTS_DIR}/{environment}/{model}.yaml does not exist",
                     hint=f"{model} is deployed to: {', '.join(where)}" if where else "")


def comparison_of(repository: Repository, specs: Specs, dep: DeploymentSpec, path: str) -> tuple[Comparison, int]:
    canary = dep.rollout.canary
    if canary is None or canary.pin.version is None:
        raise UsageError(f"{path} declares no canary (rollout.canary)", hint=f"add one with `gitops-ml promote {dep.model} --env {dep.environment} --canary 10`")
    stable = dep.pin.version or specs.models[dep.model].spec.version
    stable_manifest = _manifest(repository, specs, dep.model, stable)
    candidate_manifest = _manifest(repository, specs, dep.model, canary.pin.version)
    comparison = Comparison(dep.model, dep.environment, stable, canary.pin.version, dep.rollout.analysis, shared_output_kind(stable_manifest, candidate_manifest))
    return comparison, canary.weight


def _manifest(repository: Repository, specs: Specs, model: ModelName, version: Version) -> ManifestSpec:
    return resolve_model_version(repository, specs, model, version).entry.manifest


def canary_status(request: CanaryStatusRequest) -> list[CanaryStatus]:
    """Run the analysis queries of one canary (or of every canary) now; PrometheusUnreachable when
    no Prometheus answers."""
    repository = request.repo
    specs = require_specs(repository, "{errors} problem(s) in the repository; fix them first (`gitops-ml validate`)")
    if request.every_canary:
        targets = canary_targets(repository, specs, request.base)
    else:
        dep, path = find_deployment(specs, request.model, request.environment)
        targets = [(specs, dep, path)]
    prometheus = Prometheus(request.prometheus, timeout=request.timeout)
    try:
        return [_measure(prometheus, *comparison_of(repository, target_specs, dep, path), path) for target_specs, dep, path in targets]
    finally:
        prometheus.close()


def _measure(prometheus: Prometheus, comparison: Comparison, weight: int, path: str) -> CanaryStatus:
    candidate_requests = prometheus.value(comparison.requests_query)
    stable_requests = prometheus.value(comparison.stable_requests_query)
    readings = tuple(Reading(c, prometheus.value(c.query), prometheus.value(c.stable_query) if c.stable_query else None) for c in criteria(comparison))
    return CanaryStatus(comparison, weight, prometheus.url, candidate_requests, stable_requests, readings, path)


def canary_targets(repository: Repository, specs: Specs, base: str = "") -> list[tuple[Specs, DeploymentSpec, str]]:
    """Every canary the working tree declares; with `base`, also each canary declared at base whose
    version the working tree promotes (`model:` moved to it): a promotion is gated on the canary it
    ends. A rollback (the canary removed, `model:` kept) is never gated."""
    out = [(specs, dep, specs.deployment_files[(dep.environment, dep.model)]) for dep in specs.deployments if dep.rollout.canary is not None]
    if not base:
        return out
    base_specs = validate_tree(load_tree(repository.at(base))).specs
    if base_specs is None:
        return out
    head = {(d.environment, d.model): d for d in specs.deployments}
    for dep in base_specs.deployments:
        canary = dep.rollout.canary
        now = head.get((dep.environment, dep.model))
        if canary is None or now is None or now.rollout.canary is not None:
            continue
        if now.pin.version is not None and now.pin.version == canary.pin.version:
            out.append((base_specs, dep, f"{base_specs.deployment_files[(dep.environment, dep.model)]} at {base}"))
    return out

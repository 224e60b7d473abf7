"""Validated specs + resolved versions -> the render plan: one Endpoint per (environment, model).

`make_plan` is pure: it reads no files and no git. `resolve_versions` is the one step that asks
the registry (git, through gitops_ml.registry.versions) which files each pin means. Cross-environment rules
that only matter for rendering (a host used twice on one cluster) are checked here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional

from gitops_ml.adapters.git import CommitTree
from gitops_ml.errors import Location, RegistryError, RenderError, ValidationError
from gitops_ml.registry.versions import ModelVersion, resolve_model_version
from gitops_ml.repo.handle import Repository
from gitops_ml.rollout.queries import Comparison, shared_output_kind
from gitops_ml.serving.settings import ServerSettings
from gitops_ml.types import (
    DeploymentSpec,
    Environment,
    EnvironmentName,
    Finding,
    ImageRef,
    ManifestSpec,
    ModelName,
    ModelPin,
    ModelSpec,
    RepositorySpec,
    RolloutController,
    Version,
)
from gitops_ml.validate.specs import Specs

Locate = Callable[[str, list[str | int]], Location]


@dataclass(frozen=True)
class ResolvedVersion:
    """What a pin means: the model's specs at that version, its image, and where it was read from."""

    model: ModelSpec
    manifest: ManifestSpec
    image: ImageRef
    commit: str | None  # None: the working tree


@dataclass(frozen=True)
class Route:
    """Where an endpoint is reachable from outside: what must be unique per cluster."""

    environment: str
    cluster: str
    host: str
    path: str
    source_path: str


@dataclass(frozen=True)
class Candidate:
    """A candidate version beside the stable one: the canary or the shadow of an endpoint."""

    track: str  # canary | shadow
    version: ResolvedVersion
    share: int  # percent of live traffic answered (canary) or mirrored (shadow)


@dataclass(frozen=True)
class Endpoint:
    """One model served in one environment; its names never depend on the version."""

    environment: Environment
    deployment: DeploymentSpec
    version: ResolvedVersion
    source_path: str  # deployments/<env>/<model>.yaml
    candidates: tuple[Candidate, ...] = ()

    def candidate(self, track: str) -> Candidate | None:
        return next((c for c in self.candidates if c.track == track), None)

    @property
    def controller(self) -> RolloutController:
        return self.deployment.controller(self.environment)

    @property
    def argo_rollouts(self) -> bool:
        return self.controller is RolloutController.ARGO_ROLLOUTS

    @property
    def model(self) -> ModelName:
        return self.deployment.model

    @property
    def route(self) -> "Route | None":
        exp = self.deployment.exposure
        if exp is None:
            return None
        return Route(self.environment.name, self.environment.cluster, exp.host.lower(), exp.path, self.source_path)

    @property
    def settings(self) -> dict[str, str]:
        """The ConfigMap's data: the server's GITOPS_ML_* contract."""
        return self.settings_of(self.version)

    def settings_of(self, version: ResolvedVersion, track: str = "") -> dict[str, str]:
        """The ConfigMap of one version of this endpoint; a candidate's names its track."""
        return ServerSettings.from_specs(version.model, version.manifest, self.deployment, track=track).to_env()

    @property
    def comparison(self) -> Comparison | None:
        """What a canary analysis compares (None without a canary)."""
        canary = self.candidate("canary")
        if canary is None:
            return None
        return Comparison(
            self.model,
            self.environment.name,
            self.version.model.version,
            canary.version.model.version,
            self.deployment.rollout.analysis,
            shared_output_kind(self.version.manifest, canary.version.manifest),
        )


@dataclass(frozen=True)
class Plan:
    """Everything rendering needs, in a stable order (environment, then model)."""

    repository: RepositorySpec
    endpoints: tuple[Endpoint, ...]
    environment_names: tuple[EnvironmentName, ...]  # rendered environments (all unless --env)

    @property
    def environments(self) -> tuple[Environment, ...]:
        return tuple(self.repository.environments[name] for name in self.environment_names)

    def endpoints_in(self, environment: EnvironmentName) -> tuple[Endpoint, ...]:
        return tuple(e for e in self.endpoints if e.environment.name == environment)

    @property
    def models(self) -> tuple[ModelName, ...]:
        """Models deployed somewhere: each gets one Kustomize base."""
        return tuple(sorted({e.model for e in self.endpoints}))


PinKey = tuple[ModelName, Optional[Version]]


def resolve_versions(
    repository: Repository,
    specs: Specs,
    deployments: Iterable[DeploymentSpec],
    locate: "Locate | None" = None,
    source: "CommitTree | None" = None,
) -> dict[PinKey, ResolvedVersion]:
    """Resolve every distinct pin once (git is asked only for versions the tree lacks).

    `source` is the commit the specs were read from (for `diff --base`); None means the working tree.
    """
    out: dict[PinKey, ResolvedVersion] = {}
    for dep in deployments:
        # candidates resolve through the same path as pins: each version gets its own content-addressed image
        pins: list[tuple[ModelPin, list[str | int]]] = [(dep.pin, ["model"])]
        pins += [(pin, ["rollout", track, "model"]) for track, pin in dep.rollout.candidates]
        for pin, where in pins:
            key = (pin.model, pin.version)
            if key in out:
                continue
            try:
                current = specs.models.get(pin.model)
                if source is not None and current is not None and pin.version in (None, current.spec.version):
                    mv = ModelVersion(current, source, source.commit.hexsha)
                else:
                    mv = resolve_model_version(repository, specs, pin.model, pin.version)
            except RegistryError as exc:
                if exc.location is None:
                    path = specs.deployment_files.get((dep.environment, dep.model), f"deployments/{dep.environment}/{dep.model}.yaml")
                    exc.location = (locate or _no_location)(path, where)
                raise
            out[key] = ResolvedVersion(mv.entry.spec, mv.entry.manifest, mv.image_ref(specs.repository), mv.commit)
    return out


def _no_location(path: str, json_path: list[str | int]) -> Location:
    return Location(path)


def host_findings(routes: Iterable[Route], locate: Locate = _no_location) -> list[Finding]:
    """A host may serve one environment per cluster, and one endpoint per path within it."""
    owner: dict[tuple[str, str], Route] = {}
    taken: dict[tuple[str, str, str], Route] = {}
    out: list[Finding] = []
    for route in sorted(routes, key=lambda r: (r.environment, r.source_path)):
        first = owner.setdefault((route.cluster, route.host), route)
        if first.environment != route.environment:
            out.append(
                Finding(
                    locate(route.source_path, ["exposure", "host"]),
                    f"host {route.host!r} is already declared by environment {first.environment!r} "
                    f"({first.source_path}) on the same cluster {route.cluster}",
                    hint="give each environment its own host name, e.g. <model>.<environment>.example.com",
                )
            )
            continue
        other = taken.setdefault((route.cluster, route.host, route.path.rstrip("/") or "/"), route)
        if other is not route:
            out.append(
                Finding(
                    locate(route.source_path, ["exposure", "path"]),
                    f"host {route.host!r} and path {route.path!r} are already used by {other.source_path}",
                )
            )
    return out


def make_plan(
    specs: Specs,
    versions: Mapping[PinKey, ResolvedVersion],
    *,
    environments: Iterable[str] | None = None,
    locate: Locate = _no_location,
    other_routes: Iterable[Route] = (),
) -> Plan:
    """The plan for every deployment (or only those of `environments`); raises on conflicts."""
    repo = specs.repository
    wanted = set(environments) if environments is not None else None
    if wanted is not None:
        unknown = sorted(wanted - set(repo.environments))
        if unknown:
            declared = ", ".join(sorted(repo.environments))
            raise RenderError(f"unknown environment {unknown[0]!r} (declared: {declared})", hint="see `environments:` in gitops-ml.yaml")
    names = tuple(sorted(n for n in repo.environments if wanted is None or n in wanted))
    endpoints, routes = [], []
    for dep in sorted(specs.deployments, key=lambda d: (d.environment, d.model)):
        path = specs.deployment_files.get((dep.environment, dep.model), f"deployments/{dep.environment}/{dep.model}.yaml")
        env = repo.environments[dep.environment]
        if dep.exposure is not None:
            routes.append(Route(env.name, env.cluster, dep.exposure.host.lower(), dep.exposure.path, path))
        if dep.environment not in names:
            continue
        version = versions.get((dep.model, dep.pin.version))
        if version is None:
            raise RenderError(f"version {dep.pin} was not resolved", location=locate(path, ["model"]))
        candidates = []
        rollout = dep.rollout
        for track, pin in rollout.candidates:
            resolved = versions.get((pin.model, pin.version))
            if resolved is None:
                raise RenderError(f"version {pin} was not resolved", location=locate(path, ["rollout", track, "model"]))
            share = rollout.canary.weight if track == "canary" and rollout.canary else (rollout.shadow.percent if rollout.shadow else 100)
            candidates.append(Candidate(track, resolved, share))
        endpoints.append(Endpoint(env, dep, version, path, tuple(candidates)))
    # host conflicts look at every environment, even when only some are rendered; other_routes
    # are those of endpoints a partial render did not re-plan
    findings = host_findings([*routes, *other_routes], locate)
    if findings:
        raise ValidationError(findings, f"{len(findings)} exposure conflict(s)")
    return Plan(repo, tuple(endpoints), names)

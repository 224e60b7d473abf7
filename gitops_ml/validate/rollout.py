"""Rules for a deployment file's `rollout:` (canary, shadow, analysis, controller), for concurrency
autoscaling and for TLS: the file-local rules (`deployment_findings`, pure) and the ones that ask git
history (`candidate_findings`: the candidate exists, its input schema accepts what the stable's does).
Every finding is located at the line that must change. Never prints.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from gitops_ml.errors import GitopsMlError, LoadError
from gitops_ml.repo.handle import Repository
from gitops_ml.repo.loading import Document, parse_yaml
from gitops_ml.repo.sources import FileSource
from gitops_ml.types import (
    MODELS_DIR,
    REPOSITORY_FILE,
    DeploymentSpec,
    Engine,
    Environment,
    Finding,
    ModelName,
    ModelPin,
    RolloutController,
    Version,
)
from gitops_ml.validate.compat import schema_breaks
from gitops_ml.validate.specs import Specs

TRAFFIC_HINT = "set exposure.type: httproute with exposure.gateway: a Gateway API route splits and mirrors traffic"


def deployment_findings(doc: Document, spec: DeploymentSpec, environment: Environment | None, newest: Version | None) -> list[Finding]:
    """File-local rules of one deployment file: candidates, analysis, controller, autoscaling, TLS.

    `environment` is None when gitops-ml.yaml does not declare it (that is reported elsewhere);
    `newest` is the working tree's version of the model, None when the model does not validate.
    """
    out: list[Finding] = []
    rollout = spec.rollout
    stable = spec.pin.version or newest
    exposure = spec.exposure
    for track, pin in rollout.candidates:
        where = doc.locate(["rollout", track, "model"])
        if pin.model != spec.model:
            out.append(Finding(where, f"rollout.{track} runs model {pin.model!r}, but this file deploys {spec.model!r}: a {track} is another version of the same model",
                               hint=f"name a version of {spec.model}, e.g. {spec.model}@{newest or '1.1.0'}"))
            continue
        assert pin.version is not None  # the schema requires a pinned candidate
        if stable is not None and pin.version == stable:
            out.append(Finding(where, f"rollout.{track} runs {pin}, the version `model:` already runs: a {track} is another version",
                               hint=f"list versions with `gitops-ml history {spec.model}`"))
        elif newest is not None and pin.version > newest:
            out.append(Finding(where, f"rollout.{track} version {pin.version} is newer than the newest version of {spec.model} ({newest})",
                               hint=f"bump the model first: `gitops-ml bump {spec.model}`"))
        what = "split traffic by weight" if track == "canary" else "mirror traffic"
        if exposure is None:
            out.append(Finding(doc.locate(["rollout", track], key=True), f"a {track} needs an exposure that can {what}; this endpoint has no exposure", hint=TRAFFIC_HINT))
        elif exposure.type != "httproute":
            out.append(Finding(doc.locate(["rollout", track], key=True), f"a {track} needs an exposure that can {what}, and an Ingress cannot (exposure.type is {exposure.type})", hint=TRAFFIC_HINT))
    if rollout.analysis_declared and rollout.canary is None:
        out.append(Finding(doc.locate(["rollout", "analysis"], key=True), "rollout.analysis without rollout.canary: the analysis compares a canary with the stable version",
                           hint="declare rollout.canary, or remove rollout.analysis"))
    if environment is not None:
        out.extend(_controller_findings(doc, spec, environment))
        auto = spec.autoscaling
        if auto.enabled and auto.metric == "concurrency" and not environment.prometheus:
            out.append(Finding(doc.locate(["autoscaling", "metric"]),
                               f"autoscaling.metric concurrency needs a Prometheus address for the KEDA trigger, and environment {environment.name!r} has none",
                               hint=f"set environments.{environment.name}.prometheus in {REPOSITORY_FILE}, e.g. http://prometheus.monitoring:9090"))
    if exposure is not None:
        out.extend(_tls_findings(doc, exposure.type))
    return out


def _controller_findings(doc: Document, spec: DeploymentSpec, environment: Environment) -> list[Finding]:
    if spec.controller(environment) is not RolloutController.ARGO_ROLLOUTS:
        return []
    declared = spec.rollout.controller is not None
    where = doc.locate(["rollout", "controller"]) if declared else doc.locate(["rollout", "canary"] if spec.rollout.canary else [])
    source = "rollout.controller" if declared else f"environment {environment.name!r} (rollout.controller in {REPOSITORY_FILE})"
    out = []
    if environment.engine is Engine.FLUX:
        out.append(Finding(where, f"argo-rollouts (from {source}) moves the HTTPRoute's weights itself, and Flux would put them back at every reconciliation",
                           hint="with Flux, use controller gateway-api: promotion is then a pull request that moves the weight"))
    if declared and environment.application_set:
        out.append(Finding(where, f"environment {environment.name!r} uses an ApplicationSet, whose one template cannot ignore the weights Argo Rollouts moves for this endpoint only",
                           hint=f"set environments.{environment.name}.rollout.controller: argo-rollouts in {REPOSITORY_FILE} instead"))
    if spec.rollout.canary is not None and not environment.prometheus:
        out.append(Finding(where, f"argo-rollouts (from {source}) gates the canary on an AnalysisTemplate that queries Prometheus, and environment {environment.name!r} has no Prometheus address",
                           hint=f"set environments.{environment.name}.prometheus in {REPOSITORY_FILE}, e.g. http://prometheus.monitoring:9090"))
    return out


def _tls_findings(doc: Document, exposure_type: str) -> list[Finding]:
    data = doc.data.get("exposure") or {}
    tls = data.get("tls") or {}
    out = []
    if "tlsSecretName" in data and "secretName" in tls:
        out.append(Finding(doc.locate(["exposure", "tlsSecretName"], key=True), "exposure.tlsSecretName and exposure.tls.secretName both name the TLS Secret", hint="keep exposure.tls.secretName"))
    if exposure_type == "httproute":
        for key in ("secretName", "issuer"):
            if key in tls:
                out.append(Finding(doc.locate(["exposure", "tls", key], key=True), f"exposure.tls.{key} is for an Ingress: behind an HTTPRoute the Gateway's listener holds the certificate",
                                   hint="name the Gateway's HTTPS listener with exposure.tls.listener"))
        if "tlsSecretName" in data:
            out.append(Finding(doc.locate(["exposure", "tlsSecretName"], key=True), "exposure.tlsSecretName is for an Ingress: behind an HTTPRoute the Gateway's listener holds the certificate",
                               hint="name the Gateway's HTTPS listener with exposure.tls.listener"))
        section = (data.get("gateway") or {}).get("sectionName")
        if "listener" in tls and section and section != tls["listener"]:
            out.append(Finding(doc.locate(["exposure", "tls", "listener"]), f"exposure.tls.listener {tls['listener']!r} and exposure.gateway.sectionName {section!r} name different listeners"))
    else:
        if "listener" in tls:
            out.append(Finding(doc.locate(["exposure", "tls", "listener"], key=True), "exposure.tls.listener is for an HTTPRoute: an Ingress holds its certificate in a Secret",
                               hint="name the Secret with exposure.tls.secretName"))
        if tls and "secretName" not in tls and "tlsSecretName" not in data and "listener" not in tls:
            out.append(Finding(doc.locate(["exposure", "tls"], key=True), "exposure.tls needs secretName: the Secret the Ingress serves the certificate from (the issuer, when given, writes it)"))
    return out


# --- rules that ask git history --------------------------------------------------------------------


def candidate_findings(repository: Repository, specs: Specs) -> list[Finding]:
    """Candidates that git history does not have, and candidates whose input schema refuses requests
    the stable version accepts (a canary and a shadow share the endpoint's requests).

    Outside a git repository only versions
    of the working tree can be checked.
    """
    documents = {d.document.path: d.document for d in repository.tree().deployments}
    wanted = [(dep, documents[specs.deployment_files[(dep.environment, dep.model)]]) for dep in specs.deployments if dep.rollout.candidates]
    if not wanted:
        return []
    from gitops_ml.adapters import git as gitx  # noqa: PLC0415 - GitPython only when a candidate is declared
    from gitops_ml.history import reading  # noqa: PLC0415

    try:
        reg: Any = reading.open_registry(repository)
    except GitopsMlError:
        reg = None
    commits: dict[tuple[ModelName, Version], str | None] = {}
    histories: dict[ModelName, Any] = {}

    def commit_of(model: ModelName, version: Version) -> str | None:
        key = (model, version)
        if key not in commits:
            sha = reading.tagged_commit(reg, model, version)
            if sha is None:
                if model not in histories:
                    histories[model] = reading.model_history(reg, model)
                record = histories[model].get(version)
                sha = record.commit.sha if record is not None else None
            commits[key] = sha
        return commits[key]

    schemas: dict[tuple[ModelName, Version], Any] = {}

    def schema_of(model: ModelName, version: Version) -> Any:
        """The input schema of model@version (None: none declared or unreadable); KeyError: not in git."""
        key = (model, version)
        if key in schemas:
            return schemas[key]
        entry = specs.models[model]
        if version == entry.spec.version:
            source: FileSource = repository.worktree
        else:
            sha = commit_of(model, version) if reg is not None else None
            if sha is None:
                raise KeyError(version)
            source = repository.at(sha)
        schemas[key] = _read_schema(source, model)
        return schemas[key]

    out: list[Finding] = []
    for dep, doc in wanted:
        stable = dep.pin.version or specs.models[dep.model].spec.version
        for track, pin in dep.rollout.candidates:
            if pin.model != dep.model or pin.version is None or pin.version == stable:
                continue  # reported by deployment_findings
            where = doc.locate(["rollout", track, "model"])
            try:
                candidate_schema = schema_of(pin.model, pin.version)
            except KeyError:
                if reg is None:
                    continue  # no history to ask: the working tree alone cannot vouch for it
                hint = gitx.SHALLOW_HINT if gitx.is_shallow(reg.repo) else f"list versions with `gitops-ml history {pin.model}`"
                out.append(Finding(where, f"rollout.{track}: version {pin.version} of model {pin.model!r} does not exist in git history", hint=hint))
                continue
            try:
                stable_schema = schema_of(dep.model, stable)
            except KeyError:
                continue  # a missing stable pin is reported by the pin rule
            breaks = _breaks(stable_schema, candidate_schema)
            if breaks:
                out.append(Finding(where, f"rollout.{track}: the input schema of {pin} refuses requests that {ModelPin(dep.model, stable)} accepts ({'; '.join(breaks[:3])}); "
                                          f"a {track} receives the endpoint's requests, so it must accept every one of them",
                                   hint="a version with an incompatible schema needs its own endpoint (another deployment file), not a canary"))
    return out


def _breaks(stable: Any, candidate: Any) -> list[str]:
    if stable is None and candidate is None:
        return []
    if stable is None:
        return ["$: the candidate declares an input schema and the stable version none"]
    if candidate is None:
        return []  # no schema accepts everything
    return schema_breaks(stable, candidate)


def _read_schema(source: FileSource, model: ModelName) -> Any:
    manifest_path = f"{MODELS_DIR}/{model}/manifest.yaml"
    try:
        manifest = parse_yaml(manifest_path, source.read(manifest_path)).data
    except (LoadError, OSError):
        return None
    rel = manifest.get("schema") if isinstance(manifest, dict) else None
    if not rel:
        return None
    try:
        return json.loads(source.read(f"{MODELS_DIR}/{model}/{rel}"))
    except (OSError, ValueError):
        return None


def has_candidates(deployments: Iterable[DeploymentSpec]) -> bool:
    return any(d.rollout.candidates for d in deployments)

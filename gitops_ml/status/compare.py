"""Git's endpoints vs the cluster's objects -> one EndpointStatus per endpoint, with marks (pure).

An endpoint is settled when the cluster's spec is what git renders, every running pod template
carries git's version and image tag, every replica is updated and available, and the engine has
synced HEAD and calls it healthy. Anything else is a mark, and the worst mark is the verdict.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from gitops_ml.status.model import (
    Autoscaler,
    Code,
    Desired,
    DesiredEndpoint,
    DesiredEnvironment,
    DesiredVersion,
    EndpointStatus,
    EngineState,
    Head,
    Mark,
    Pod,
    PodTemplate,
    Relation,
    ReplicaSet,
    RunningVersion,
    ScaledObject,
    Scaling,
    Severity,
    Snapshot,
    Verdict,
    Workload,
)
from gitops_ml.types import Engine

CANDIDATES = ("canary", "shadow")  # `<model>-canary`, `<model>-shadow`: issue 12's names, independent of versions
ENGINE_KIND = {Engine.ARGOCD: "Application", Engine.FLUX: "Kustomization"}


def short(commit: str | None) -> str:
    return commit[:7] if commit else "?"


def _same_version(observed: str | None, wanted: DesiredVersion) -> bool:
    exact = str(wanted.version)
    return observed in (exact, exact.replace("+", "_"))


def _template_matches(template: PodTemplate, wanted: DesiredVersion) -> bool:
    return _same_version(template.version, wanted) and template.image_tag == wanted.image_tag


def _describe(template: PodTemplate) -> str:
    return template.version or template.image_tag or template.image or "an unknown version"


class _Index:
    """The snapshot, indexed the ways the comparison looks things up."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.workloads = {(w.namespace, w.name): w for w in snapshot.workloads}
        self.replicasets: dict[str, list[ReplicaSet]] = defaultdict(list)
        for rs in snapshot.replicasets:
            self.replicasets[rs.owner_uid].append(rs)
        self.autoscalers = {(a.namespace, a.name): a for a in snapshot.autoscalers}
        self.autoscaler_of = {(a.namespace, a.target_name): a for a in snapshot.autoscalers if not a.name.startswith("keda-hpa-")}
        self.scaled_objects = {(s.namespace, s.target_name): s for s in snapshot.scaled_objects}
        self.pods: dict[tuple[str, str], list[Pod]] = defaultdict(list)
        for pod in snapshot.pods:
            self.pods[(pod.namespace, pod.pod_hash)].append(pod)
        self.engines = {(e.kind, e.namespace, e.name): e for e in snapshot.engines}
        self.missing_namespaces = snapshot.missing_namespaces


def _running(workload: Workload, replicasets: list[ReplicaSet]) -> list[tuple[ReplicaSet, str]]:
    """The pod templates that have replicas, newest first, each with its role."""
    live = sorted((rs for rs in replicasets if rs.replicas > 0), key=lambda rs: -rs.revision)
    if workload.rollout is not None:
        state = workload.rollout
        out = []
        for rs in live:
            if rs.pod_hash == state.stable_hash:
                role = "stable"
            elif rs.pod_hash == state.current_hash:
                role = "canary"
            else:
                role = "old"
            out.append((rs, role))
        return out
    if len(live) == 1:
        return [(live[0], "stable")]
    newest = max((rs.revision for rs in replicasets), default=0)
    return [(rs, "new" if rs.revision == newest else "old") for rs in live]


class _Marks:
    def __init__(self) -> None:
        self.items: list[Mark] = []

    def add(self, code: Code, severity: Severity, message: str) -> None:
        self.items.append(Mark(code, severity, message))

    def verdict(self) -> Verdict:
        worst = max((m.severity for m in self.items), default=Severity.INFO)
        codes = {m.code for m in self.items}
        if worst is Severity.FAILURE:
            return Verdict.FAILED
        if Code.EXTRA in codes:
            return Verdict.EXTRA
        if Code.MISSING in codes:
            return Verdict.MISSING
        if worst is Severity.DRIFT:
            return Verdict.OUT_OF_SYNC
        if worst is Severity.PROGRESS:
            return Verdict.PROGRESSING
        if worst is Severity.WARNING:
            return Verdict.WARNING
        return Verdict.OK


def _check_spec(marks: _Marks, workload: Workload, wanted: DesiredVersion, label: str) -> None:
    t = workload.template
    if not _same_version(t.version, wanted):
        marks.add(
            Code.SPEC_VERSION, Severity.DRIFT,
            f"the cluster's {workload.kind} {label}wants {_describe(t)}, git {wanted.version}",
        )
    elif t.image_tag != wanted.image_tag:
        marks.add(
            Code.SPEC_IMAGE, Severity.DRIFT,
            f"the cluster's {workload.kind} {label}runs image tag {t.image_tag or t.image}, git renders {wanted.image_tag} "
            "(same version, other content: re-rendered without a version bump, or edited in the cluster)",
        )


def _check_progress(marks: _Marks, workload: Workload, running: list[tuple[ReplicaSet, str]], wanted: DesiredVersion) -> bool:
    """Rollout progress and health marks; True when the rollout failed."""
    want = workload.spec_replicas if workload.spec_replicas is not None else max(workload.replicas, 1)
    if workload.generation and workload.observed_generation < workload.generation:
        marks.add(Code.ROLLING_OUT, Severity.PROGRESS, f"the {workload.kind} controller has not yet acted on the latest spec")
    if workload.rollout is not None:
        return _check_argo_rollout(marks, workload, running, wanted, want)
    progressing = workload.condition("Progressing")
    if progressing is not None and progressing.status == "False" and progressing.reason == "ProgressDeadlineExceeded":
        marks.add(Code.ROLLOUT_FAILED, Severity.FAILURE, f"rollout failed (ProgressDeadlineExceeded): {progressing.message}")
        return True
    failure = workload.condition("ReplicaFailure")
    if failure is not None and failure.status == "True":
        marks.add(Code.UNAVAILABLE, Severity.FAILURE, f"replicas cannot be created ({failure.reason}): {failure.message}")
    old = sum(rs.replicas for rs, role in running if role == "old")
    rolling = workload.updated < want or workload.replicas > workload.updated or old > 0
    if workload.paused and rolling:
        marks.add(Code.PAUSED, Severity.DRIFT, f"the rollout is paused: {workload.updated} of {want} replicas updated")
    elif rolling:
        olds = ", ".join(f"{_describe(rs.template)} x{rs.replicas}" for rs, role in running if role == "old")
        marks.add(
            Code.ROLLING_OUT, Severity.PROGRESS,
            f"rolling out {_describe(workload.template)}: {workload.updated} of {want} updated, {workload.available} available"
            + (f"; still serving {olds}" if olds else ""),
        )
    elif workload.available < want:
        available = workload.condition("Available")
        why = f": {available.message}" if available is not None and available.status == "False" and available.message else ""
        marks.add(Code.UNAVAILABLE, Severity.FAILURE, f"{workload.available} of {want} replicas available{why}")
    return False


def _check_argo_rollout(marks: _Marks, workload: Workload, running: list[tuple[ReplicaSet, str]], wanted: DesiredVersion, want: int) -> bool:
    state = workload.rollout
    assert state is not None
    if state.aborted or state.phase == "Degraded":
        marks.add(Code.ROLLOUT_FAILED, Severity.FAILURE, f"rollout {'aborted' if state.aborted else 'degraded'}: {state.message or state.phase}")
        return True
    canary = next((rs for rs, role in running if role == "canary"), None)
    stable = next((rs for rs, role in running if role == "stable"), None)
    step = f"step {state.step}/{state.steps}" if state.step is not None and state.steps else ""
    if state.phase in ("Progressing", "Paused") or canary is not None:
        what = f"canary {_describe(canary.template) if canary else _describe(workload.template)}"
        weight = f" at {state.canary_weight}%" if state.canary_weight is not None else ""
        paused = " (paused: promote with `kubectl argo rollouts promote`)" if state.phase == "Paused" else ""
        marks.add(Code.CANARY, Severity.PROGRESS, f"{what}{weight}{', ' + step if step else ''}{paused}")
    elif stable is not None and not _template_matches(stable.template, wanted):
        marks.add(Code.ROLLING_OUT, Severity.PROGRESS, f"stable is {_describe(stable.template)}, git {wanted.version}")
    elif workload.available < want:
        marks.add(Code.UNAVAILABLE, Severity.FAILURE, f"{workload.available} of {want} replicas available")
    return False


def _check_pods(marks: _Marks, pods: Iterable[Pod]) -> None:
    problems: dict[str, list[str]] = defaultdict(list)
    for pod in pods:
        for problem in pod.problems:
            problems[problem].append(pod.name)
    for problem, names in sorted(problems.items(), key=lambda kv: -len(kv[1])):
        who = names[0] if len(names) == 1 else f"{len(names)} pods"
        marks.add(Code.PODS, Severity.FAILURE, f"{who}: {problem}")


def _check_scaling(marks: _Marks, index: _Index, ep: DesiredEndpoint, workload: Workload) -> Scaling | None:
    key = (workload.namespace, workload.name)
    scaled: ScaledObject | None = index.scaled_objects.get(key)
    hpa: Autoscaler | None
    if scaled is not None:
        hpa = index.autoscalers.get((workload.namespace, scaled.hpa_name))
    else:
        hpa = index.autoscaler_of.get(key)
    if ep.autoscaling is None:
        if ep.replicas is not None and workload.spec_replicas is not None and workload.spec_replicas != ep.replicas:
            marks.add(Code.REPLICAS, Severity.DRIFT, f"{workload.spec_replicas} replicas in the cluster, git says {ep.replicas}")
        count = workload.spec_replicas if workload.spec_replicas is not None else workload.replicas
        return Scaling("fixed", workload.ready, count)
    if scaled is None and hpa is None:
        marks.add(Code.AUTOSCALER_MISSING, Severity.DRIFT, f"no autoscaler targets {workload.kind} {workload.name}, git declares one")
        return None
    low = scaled.min_replicas if scaled is not None and scaled.min_replicas is not None else (hpa.min_replicas if hpa else None)
    high = scaled.max_replicas if scaled is not None and scaled.max_replicas is not None else (hpa.max_replicas if hpa else None)
    wanted = ep.autoscaling
    if (low, high) != (wanted.min_replicas, wanted.max_replicas):
        marks.add(
            Code.AUTOSCALER_LIMITS, Severity.DRIFT,
            f"autoscaler limits {low}-{high} in the cluster, git says {wanted.min_replicas}-{wanted.max_replicas}",
        )
    if scaled is not None:
        ready = scaled.condition("Ready")
        if ready is not None and ready.status == "False":
            marks.add(Code.KEDA, Severity.WARNING, f"KEDA ScaledObject {scaled.name} is not ready: {ready.message or ready.reason}")
        fallback = scaled.condition("Fallback")
        if fallback is not None and fallback.status == "True":
            marks.add(Code.KEDA, Severity.WARNING, f"KEDA is using its fallback replica count: {fallback.message or fallback.reason}")
    if hpa is None:
        return Scaling("keda", workload.replicas, workload.spec_replicas or workload.replicas, low, high)
    limited = hpa.condition("ScalingLimited")
    at_max = high is not None and (hpa.desired >= high or hpa.current >= high)
    if at_max:
        reason = f" ({limited.reason}: {limited.message})" if limited is not None and limited.status == "True" and limited.message else ""
        marks.add(
            Code.AUTOSCALER_AT_MAX, Severity.WARNING,
            f"autoscaler at its maximum of {high} replicas: it cannot add capacity{reason}",
        )
    active = hpa.condition("ScalingActive")
    if active is not None and active.status == "False":
        marks.add(Code.AUTOSCALER_BLIND, Severity.WARNING, f"autoscaler cannot scale ({active.reason}): {active.message}")
    return Scaling("keda" if scaled is not None else "hpa", hpa.current, hpa.desired, low, high)


def _check_engine(marks: _Marks, ep: DesiredEndpoint, engine: EngineState | None, head: Head) -> Relation | None:
    ref = ep.engine
    kind = ENGINE_KIND[ref.engine]
    if engine is None:
        marks.add(
            Code.ENGINE_MISSING, Severity.DRIFT,
            f"no {kind} {ref.namespace}/{ref.name} deploys it (apply the rendered clusters/{ep.environment}/ to the cluster)",
        )
        return None
    if engine.kind == "Application":
        if engine.operation == "Running":
            marks.add(Code.ENGINE_PROGRESSING, Severity.PROGRESS, "Argo CD is syncing")
        elif engine.operation in ("Failed", "Error"):
            marks.add(Code.ENGINE_UNHEALTHY, Severity.FAILURE, f"Argo CD sync {engine.operation.lower()}: {engine.message}")
        if engine.sync == "OutOfSync":
            marks.add(Code.ENGINE_OUT_OF_SYNC, Severity.DRIFT, "Argo CD: OutOfSync" + (f" ({engine.message})" if engine.message else ""))
        if engine.health in ("Degraded", "Missing"):
            marks.add(Code.ENGINE_UNHEALTHY, Severity.FAILURE, f"Argo CD: {engine.health}" + (f" ({engine.message})" if engine.message else ""))
        elif engine.health == "Progressing":
            marks.add(Code.ENGINE_PROGRESSING, Severity.PROGRESS, "Argo CD: Progressing")
        elif engine.health == "Suspended":
            marks.add(Code.ENGINE_SUSPENDED, Severity.WARNING, "Argo CD: Suspended")
        if engine.suspended and ref.auto_sync:
            marks.add(Code.ENGINE_SUSPENDED, Severity.WARNING, "Argo CD's automated sync is off for this Application, git turns it on")
    else:
        ready = engine.ready
        if engine.suspended and ref.auto_sync:
            marks.add(Code.ENGINE_SUSPENDED, Severity.DRIFT, "Flux: reconciliation is suspended, git wants it automatic")
        if ready is None:
            marks.add(Code.ENGINE_PROGRESSING, Severity.PROGRESS, "Flux has not reconciled it yet")
        elif ready.status == "False":
            marks.add(Code.ENGINE_NOT_READY, Severity.FAILURE, f"Flux: Ready=False ({ready.reason}): {ready.message}")
        elif ready.status != "True":
            marks.add(Code.ENGINE_PROGRESSING, Severity.PROGRESS, f"Flux: reconciling ({ready.reason}): {ready.message}".rstrip(": "))
    if engine.revision is None or head.commit is None:
        return None
    relation = head.relation(engine.revision)
    at = f"{engine.kind} at {short(engine.revision)}, HEAD is {short(head.commit)}"
    if relation is Relation.BEHIND:
        severity = Severity.PROGRESS if ref.auto_sync and not engine.suspended else Severity.DRIFT
        marks.add(Code.ENGINE_BEHIND, severity, f"{at}: the engine has not synced HEAD yet")
    elif relation is Relation.AHEAD:
        marks.add(Code.ENGINE_AHEAD, Severity.WARNING, f"{at}: the cluster runs a newer commit than this checkout (git pull)")
    elif relation is Relation.DIVERGED:
        marks.add(Code.ENGINE_REVISION, Severity.DRIFT, f"{at}: that commit is not in HEAD's history (another branch?)")
    elif relation is Relation.UNKNOWN:
        marks.add(Code.ENGINE_REVISION, Severity.WARNING, f"{at}: that commit is not in this clone (git fetch)")
    return relation


def _endpoint(index: _Index, ep: DesiredEndpoint, head: Head) -> EndpointStatus:
    marks = _Marks()
    kind = ENGINE_KIND[ep.engine.engine]
    engine = index.engines.get((kind, ep.engine.namespace, ep.engine.name))
    workload = index.workloads.get((ep.namespace, ep.model))
    if workload is None:
        if ep.namespace in index.missing_namespaces:
            marks.add(Code.MISSING, Severity.DRIFT, f"not in the cluster: namespace {ep.namespace} does not exist")
        else:
            marks.add(Code.MISSING, Severity.DRIFT, f"not in the cluster: no Deployment or Rollout {ep.namespace}/{ep.model}")
        relation = _check_engine(marks, ep, engine, head)
        return EndpointStatus(ep.environment, ep.model, ep.namespace, marks.verdict(), tuple(marks.items), ep, None, (), None, engine, relation)
    _check_spec(marks, workload, ep.stable, "")
    replicasets = index.replicasets.get(workload.uid, [])
    running = _running(workload, replicasets)
    _check_progress(marks, workload, running, ep.stable)
    explained = {Code.SPEC_VERSION, Code.SPEC_IMAGE, Code.ROLLING_OUT, Code.ROLLOUT_FAILED, Code.CANARY, Code.PAUSED}
    if not any(m.code in explained for m in marks.items):
        # the spec is git's and the controller says done, yet some pods run another template
        for rs, _role in running:
            if not _template_matches(rs.template, ep.stable):
                marks.add(Code.ROLLING_OUT, Severity.PROGRESS, f"{rs.replicas} pod(s) of ReplicaSet {rs.name} run {_describe(rs.template)}, git {ep.stable.version}")
    hashes = {rs.pod_hash for rs in replicasets}
    _check_pods(marks, (p for h in sorted(hashes) for p in index.pods.get((workload.namespace, h), [])))
    weight = workload.rollout.canary_weight if workload.rollout is not None else None
    versions = [RunningVersion(rs.template.version, rs.template.image_tag, rs.replicas, rs.ready, role) for rs, role in running]
    versions.extend(_candidates(marks, index, ep, workload))
    scaling = _check_scaling(marks, index, ep, workload)
    relation = _check_engine(marks, ep, engine, head)
    return EndpointStatus(
        ep.environment, ep.model, ep.namespace, marks.verdict(), tuple(marks.items), ep, workload,
        tuple(versions), scaling, engine, relation, weight if weight is not None else ep.canary_weight if ep.canary else None,
    )


def _candidates(marks: _Marks, index: _Index, ep: DesiredEndpoint, workload: Workload) -> list[RunningVersion]:
    """The canary and shadow Deployments beside the stable one (`<model>-canary`, `<model>-shadow`)."""
    out = []
    for role in CANDIDATES:
        wanted: DesiredVersion | None = getattr(ep, role)
        found = index.workloads.get((ep.namespace, f"{ep.model}-{role}"))
        if found is None:
            if wanted is not None and workload.rollout is None:
                marks.add(Code.CANARY_MISSING, Severity.DRIFT, f"git declares a {role} {wanted.version}; the cluster runs none")
            continue
        if wanted is None:
            marks.add(Code.CANARY, Severity.DRIFT, f"a {role} ({_describe(found.template)}) still runs; git declares none")
        else:
            _check_spec(marks, found, wanted, f"{found.name} ")
            if found.available < (found.spec_replicas or 1) or found.updated < found.replicas:
                marks.add(Code.ROLLING_OUT, Severity.PROGRESS, f"{role} {_describe(found.template)}: {found.available} of {found.spec_replicas or 1} available")
        out.append(RunningVersion(found.template.version, found.template.image_tag, found.replicas, found.ready, role))
    return out


def _owner_model(workload: Workload, declared: set[tuple[str, str]], env: str) -> str:
    name = workload.name
    for role in CANDIDATES:
        base = name[: -len(role) - 1]
        if name.endswith(f"-{role}") and (env, base) in declared:
            return base
    return workload.model or name


def _extras(desired: Desired, index: _Index, snapshot: Snapshot, declared: set[tuple[str, str]]) -> list[EndpointStatus]:
    """Endpoints the cluster runs (found by the labels render puts on objects) that git no longer declares."""
    envs: dict[str, DesiredEnvironment] = {str(e.name): e for e in desired.environments}
    wanted = {str(m) for m in desired.models}
    workloads: dict[tuple[str, str], Workload] = {}
    engines: dict[tuple[str, str], EngineState] = {}
    for workload in snapshot.workloads:
        env = workload.environment
        if env is None or env not in envs or envs[env].namespace != workload.namespace:
            continue
        model = _owner_model(workload, declared, env)
        if (env, model) not in declared and (not wanted or model in wanted):
            workloads.setdefault((env, model), workload)
    for state in snapshot.engines:
        env, name = state.environment, state.model
        if env is None or name is None or env not in envs:
            continue
        if (env, name) not in declared and (not wanted or name in wanted):
            engines[(env, name)] = state
    out = []
    for env, model in sorted(set(workloads) | set(engines)):
        found = workloads.get((env, model))
        engine = engines.get((env, model))
        where = [f"{found.kind} {found.namespace}/{found.name}"] if found is not None else []
        if engine is not None:
            where.append(f"{engine.kind} {engine.namespace}/{engine.name}")
            after = f"; its {engine.kind} is still in the cluster: sync clusters/{env}/ (with prune) to remove it"
        else:
            after = "; no engine object manages it any more: delete it by hand"
        mark = Mark(Code.EXTRA, Severity.DRIFT, f"runs in the cluster ({', '.join(where)}) but git declares no deployments/{env}/{model}.yaml{after}")
        running: tuple[RunningVersion, ...] = ()
        if found is not None:
            running = tuple(
                RunningVersion(rs.template.version, rs.template.image_tag, rs.replicas, rs.ready, role)
                for rs, role in _running(found, index.replicasets.get(found.uid, []))
            )
        namespace = found.namespace if found is not None else envs[env].namespace
        out.append(EndpointStatus(env, model, namespace, Verdict.EXTRA, (mark,), None, found, running, None, engine, None))
    return out


def compare(desired: Desired, snapshot: Snapshot, head: Head) -> tuple[EndpointStatus, ...]:
    """One status per declared endpoint, then one per extra endpoint, sorted by environment and model."""
    index = _Index(snapshot)
    declared = {(str(ep.environment), str(ep.model)) for ep in desired.endpoints}
    # with --model, other models' objects are neither compared nor reported as extra
    statuses = [_endpoint(index, ep, head) for ep in desired.endpoints]
    statuses.extend(_extras(desired, index, snapshot, declared))
    return tuple(sorted(statuses, key=lambda s: (s.environment, s.model)))

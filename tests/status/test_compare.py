"""The pure comparison, for what render cannot produce yet: a canary beside the stable version
(issue 12 renders `<model>-canary`; status already compares it when the plan declares one)."""

from __future__ import annotations

from dataclasses import replace

from gitops_ml.status.compare import compare
from gitops_ml.status.desired import KEYS
from gitops_ml.status.model import (
    Code,
    Desired,
    DesiredEndpoint,
    DesiredEnvironment,
    DesiredVersion,
    EngineRef,
    EngineState,
    Head,
    PodTemplate,
    ReplicaSet,
    Snapshot,
    Verdict,
    Workload,
)
from gitops_ml.types import Engine, EnvironmentName, ModelName, Version

HEAD = "a" * 40
STABLE = DesiredVersion(Version.parse("1.0.0"), "1.0.0-aaaaaaaaaaaa", "iris@v1.0.0", None)
CANARY = DesiredVersion(Version.parse("1.1.0"), "1.1.0-bbbbbbbbbbbb", "iris@v1.1.0", None)


def _endpoint(**kw: object) -> DesiredEndpoint:
    base = DesiredEndpoint(
        EnvironmentName("prod"),
        ModelName("iris"),
        "ml-prod",
        "deployments/prod/iris.yaml",
        STABLE,
        EngineRef(Engine.ARGOCD, "argocd", "prod-iris", True),
        replicas=2,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def _desired(ep: DesiredEndpoint) -> Desired:
    return Desired(
        "example-models",
        KEYS,
        (DesiredEnvironment(EnvironmentName("prod"), "ml-prod", Engine.ARGOCD, "argocd"),),
        (ep,),
    )


def _workload(name: str, version: DesiredVersion) -> tuple[Workload, ReplicaSet]:
    template = PodTemplate(str(version.version), version.image_tag, f"r/iris:{version.image_tag}", version.revision)
    w = Workload("Deployment", name, "ml-prod", f"uid-{name}", "prod", "iris", 1, 1, template, 2, 2, 2, 2, 2)
    return w, ReplicaSet(f"{name}-1", "ml-prod", w.uid, template, "h1", 1, 2, 2, 2)


def _snapshot(*pairs: tuple[Workload, ReplicaSet]) -> Snapshot:
    app = EngineState("Application", "prod-iris", "argocd", "prod", "iris", HEAD, "Synced", "Healthy")
    return Snapshot(workloads=[w for w, _ in pairs], replicasets=[rs for _, rs in pairs], engines=[app])


def test_a_declared_canary_that_runs_is_settled() -> None:
    ep = _endpoint(canary=CANARY, canary_weight=10)
    [status] = compare(_desired(ep), _snapshot(_workload("iris", STABLE), _workload("iris-canary", CANARY)), Head(HEAD))
    assert status.verdict is Verdict.OK, status.marks
    assert [(r.version, r.role) for r in status.running] == [("1.0.0", "stable"), ("1.1.0", "canary")]
    assert status.canary_weight == 10


def test_a_declared_canary_that_does_not_run() -> None:
    [status] = compare(
        _desired(_endpoint(canary=CANARY, canary_weight=10)), _snapshot(_workload("iris", STABLE)), Head(HEAD)
    )
    assert status.verdict is Verdict.OUT_OF_SYNC
    assert [(m.code, m.message) for m in status.marks] == [
        (Code.CANARY_MISSING, "git declares a canary 1.1.0; the cluster runs none")
    ]


def test_a_canary_git_no_longer_declares_is_a_mark_not_an_extra_endpoint() -> None:
    statuses = compare(
        _desired(_endpoint()), _snapshot(_workload("iris", STABLE), _workload("iris-canary", CANARY)), Head(HEAD)
    )
    assert [(s.model, s.verdict) for s in statuses] == [("iris", Verdict.OUT_OF_SYNC)]
    assert statuses[0].marks[0].message == "a canary (1.1.0) still runs; git declares none"


def test_a_canary_of_the_wrong_version() -> None:
    other = replace(CANARY, version=Version.parse("1.2.0"), image_tag="1.2.0-cccccccccccc")
    [status] = compare(
        _desired(_endpoint(canary=CANARY)),
        _snapshot(_workload("iris", STABLE), _workload("iris-canary", other)),
        Head(HEAD),
    )
    assert status.verdict is Verdict.OUT_OF_SYNC
    assert [m.message for m in status.marks] == ["the cluster's Deployment iris-canary wants 1.2.0, git 1.1.0"]

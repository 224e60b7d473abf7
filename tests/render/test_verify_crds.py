"""CRD schemas under `render --verify`: the shipped ones find structural errors and broken
x-kubernetes-validations rules in custom resources, --crds adds and overrides, kinds with no schema are
counted and named, and the shipped files are exactly what scripts/derive_crd_schemas.py derives."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from render.test_verify import CRDS, _need_kustomize
from support import ROOT, require

from gitops_ml.adapters import kubernetes as kube
from gitops_ml.cli.render import _report_verify
from gitops_ml.render.verify import VerifyReport, verify_render

SHIPPED = ROOT / "schemas" / "crds"

APPLICATION = """apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: iris
spec:
  project: default
  source:
    repoURL: https://github.com/example/models.git
    path: deploy/apps/prod/iris
    targetRevision: main
  destination:
    server: https://kubernetes.default.svc
    {destination_namespace}: ml-prod
"""

HTTPROUTE = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: iris
spec:
  parentRefs:
  - name: public
  rules:
  - matches:
    - path:
        type: PathPrefix
        value: {path}
    backendRefs:
    - name: iris
      port: 80
"""

SCALEDOBJECT = """apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: iris
spec:
  scaleTargetRef:
    name: iris
  minReplicaCount: {low}
  maxReplicaCount: 3
  triggers:
  - type: prometheus
    metadata:
      query: sum(rate(x[1m]))
      threshold: "10"
"""

WIDGET = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: {size}\n"

WIDGET_CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, maximum: 10}
"""


def _render_root(tmp_path: Path, **files: str) -> Path:
    """A render root with one overlay (apps/prod/m) holding these objects."""
    overlay = tmp_path / "deploy" / "apps" / "prod" / "m"
    overlay.mkdir(parents=True)
    names = []
    for name, text in files.items():
        (overlay / f"{name}.yaml").write_text(text)
        names.append(f"{name}.yaml")
    (overlay / "kustomization.yaml").write_text("resources:\n" + "".join(f"- {n}\n" for n in names))
    return tmp_path / "deploy"


def _errors(report: VerifyReport) -> list[str]:
    return [str(f).split("kustomization.yaml: ", 1)[1] for f in report.findings]


@pytest.mark.kustomize
def test_shipped_schemas_accept_valid_custom_resources(tmp_path: Path) -> None:
    _need_kustomize()
    root = _render_root(
        tmp_path,
        app=APPLICATION.format(destination_namespace="namespace"),
        route=HTTPROUTE.format(path="/v1"),
        scaled=SCALEDOBJECT.format(low=1),
    )
    report = verify_render(root, "deploy", cache=False)
    assert report.findings == [] and report.validated == 3 and not report.unchecked
    assert report.tally.rules_evaluated > 0


@pytest.mark.kustomize
def test_shipped_schemas_find_typos_and_broken_rules(tmp_path: Path) -> None:
    _need_kustomize()
    root = _render_root(
        tmp_path,
        app=APPLICATION.format(destination_namespace="nmespace"),
        route=HTTPROUTE.format(path="v1"),
        scaled=SCALEDOBJECT.format(low=5),
    )
    errors = _errors(verify_render(root, "deploy", cache=False))
    assert len(errors) == 3, errors
    assert any(
        e.startswith("Application/iris: spec.destination: Additional properties are not allowed ('nmespace'")
        for e in errors
    ), errors
    assert (
        "HTTPRoute/iris: spec.rules.0.matches.0.path: value must be an absolute path and start with '/' when type one of ['Exact', 'PathPrefix']"
        in errors
    )
    assert "ScaledObject/iris: spec: minReplicaCount must be less than or equal to maxReplicaCount" in errors


@pytest.mark.kustomize
def test_kinds_without_a_schema_are_counted_and_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _need_kustomize()
    report = verify_render(
        _render_root(tmp_path, widget=WIDGET.format(size=3), app=APPLICATION.format(destination_namespace="namespace")),
        "deploy",
        cache=False,
    )
    assert report.ok and report.validated == 1 and report.unchecked == {"Widget example.com/v1": 1}
    _report_verify(report)
    out, err = capsys.readouterr()
    assert (
        out
        == "verified: 1 kustomization(s) built with kubectl kustomize; 1 object(s) valid against their schemas; 1 not checked (no schema for their kind, listed above)\n"
    )
    assert (
        err
        == "note: 1 Widget example.com/v1 object(s) not checked: no schema for this kind (add its CRD with --crds DIR)\n"
    )


@pytest.mark.kustomize
def test_crds_add_kinds_and_override_shipped_ones(tmp_path: Path) -> None:
    _need_kustomize()
    crds = tmp_path / "crds"
    crds.mkdir()
    (crds / "widget.yaml").write_text(WIDGET_CRD)
    # an Application CRD of the user's own that demands a field the shipped one does not
    strict = json.loads((SHIPPED / "argoproj.io_application.json").read_text())
    strict["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["required"].append("info")
    (crds / "application.json").write_text(json.dumps(strict))
    root = _render_root(
        tmp_path / "r", widget=WIDGET.format(size=30), app=APPLICATION.format(destination_namespace="namespace")
    )
    errors = _errors(verify_render(root, "deploy", crds=[crds], cache=False))
    assert sorted(errors) == [
        "Application/iris: spec: 'info' is a required property",
        "Widget/w: spec.size: 30 is greater than the maximum of 10",
    ]


@pytest.mark.kustomize
def test_without_the_cel_runtime_rules_are_counted_as_not_evaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _need_kustomize()
    monkeypatch.setitem(sys.modules, "cel_expr_python", None)  # as on a Python without the `verify` extra
    report = verify_render(_render_root(tmp_path, route=HTTPROUTE.format(path="v1")), "deploy", cache=False)
    assert report.ok and report.validated == 1 and report.tally.rules_evaluated == 0
    assert report.tally.rules_skipped == {
        f"the CEL runtime is not installed: {kube.CEL_HINT}": sum(report.tally.rules_skipped.values())
    }
    _report_verify(report)
    _, err = capsys.readouterr()
    assert (
        "CEL validation rule evaluation(s) skipped: the CEL runtime is not installed: pip install 'gitops-ml[verify]'"
        in err
    )


def test_shipped_schemas_are_what_the_script_derives_from_the_reference_files() -> None:
    require(CRDS.is_dir(), f"the reference CRDs are not at {CRDS}")
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "derive_crd_schemas.py"),
            "--check",
            "--reference",
            str(CRDS),
            "--out",
            str(SHIPPED),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_shipped_schemas_keep_structure_drop_prose_and_name_their_source() -> None:
    index = json.loads((SHIPPED / "index.json").read_text())
    kinds = {(e["group"], e["kind"]) for e in index["crds"]}
    assert kinds == {
        ("argoproj.io", k) for k in ("Application", "ApplicationSet", "AppProject", "Rollout", "AnalysisTemplate")
    } | {
        ("source.toolkit.fluxcd.io", "GitRepository"),
        ("kustomize.toolkit.fluxcd.io", "Kustomization"),
        ("gateway.networking.k8s.io", "HTTPRoute"),
        ("gateway.networking.k8s.io", "Gateway"),
        ("external-secrets.io", "ExternalSecret"),
        ("keda.sh", "ScaledObject"),
    } | {("monitoring.coreos.com", k) for k in ("ServiceMonitor", "PodMonitor", "PrometheusRule")}
    for entry in index["crds"]:
        assert (
            entry["licence"] == "Apache-2.0"
            and entry["source"]["tag"].startswith("v")
            and len(entry["source"]["commit"]) == 40
        )
        text = (SHIPPED / entry["file"]).read_text()
        assert '"description":"' not in text, entry["file"]  # prose is gone; a field named description may stay
        doc = json.loads(text)
        assert doc["spec"]["names"]["kind"] == entry["kind"]
    route = (SHIPPED / "gateway.networking.k8s.io_httproutes.json").read_text()
    assert (
        '"x-kubernetes-validations"' in route and '"pattern"' in route and '"enum"' in route and '"required"' in route
    )
    # small enough to ship in every image the runtime wheel goes into
    assert sum(p.stat().st_size for p in SHIPPED.iterdir()) < 1_000_000


@pytest.mark.slow
def test_the_wheel_ships_every_crd_schema_and_its_index(tmp_path: Path) -> None:
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = zipfile.ZipFile(next(tmp_path.glob("gitops_ml-*.whl")))
    shipped = {
        Path(n).name: wheel.getinfo(n) for n in wheel.namelist() if n.startswith("gitops_ml/_data/schemas/crds/")
    }
    assert set(shipped) == {p.name for p in SHIPPED.iterdir()}
    # compressed, the CRD schemas add tens of kilobytes to the wheel
    assert sum(i.compress_size for i in shipped.values()) < 100_000

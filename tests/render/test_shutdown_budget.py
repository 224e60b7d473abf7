"""The rendered shutdown budget covers everything the pod does after Kubernetes asks it to stop."""

from __future__ import annotations

from pathlib import Path

import yaml
from render.render_helpers import EXAMPLE, run

from gitops_ml.serving import settings as srv


def test_termination_grace_covers_prestop_drain_graceful_stop_and_flush(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("render", EXAMPLE, "--out", out).exit_code == 0
    for patch in sorted(out.glob("apps/*/*/deployment-patch.yaml")):
        spec = yaml.safe_load(patch.read_text())["spec"]["template"]["spec"]
        base = yaml.safe_load((out / "apps/base" / patch.parent.name / "deployment.yaml").read_text())
        (container,) = base["spec"]["template"]["spec"]["containers"]
        kustomization = yaml.safe_load((patch.parent / "kustomization.yaml").read_text())
        literals = dict(item.split("=", 1) for item in kustomization["configMapGenerator"][0]["literals"])
        graceful = float(literals["GITOPS_ML_GRACE_SECONDS"])
        prestop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        needed = prestop + srv.KUBERNETES_DRAIN_SECONDS + graceful + srv.FLUSH_SECONDS
        assert spec["terminationGracePeriodSeconds"] >= needed, patch

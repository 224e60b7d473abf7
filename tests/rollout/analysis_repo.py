"""A gitops-ml repository for the canary tests: model `iris` 1.0.0 and 1.1.0 in git history (a rule
on petal length, no scikit-learn, so servers start fast), one environment per scenario, each with a
canary of 1.1.0 at 10 % and a shadow, rendered with Argo Rollouts so an AnalysisTemplate exists.

The candidate's misbehaviour is chosen when it is served (IRIS_FAULT): errors on one call in 20,
slow (2 s a call, against a limit of 1 s: far from a loaded machine's noise), or shifted (always class 0). Served versions are real checkouts of history.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

SCENARIOS = ("good", "errors", "slow", "shifted", "quiet")
CUTS = {"petal_cuts": [2.5, 4.9]}
WINDOW = "5m"

SCORE = '''"""Iris by petal length: below 2.5 cm setosa (0), below 4.9 versicolor (1), else virginica (2)."""

import json
import os
import time

cuts = None
fault = ""
calls = 0


def init():
    global cuts, fault
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights.json")) as fh:
        cuts = json.load(fh)["petal_cuts"]
    fault = os.environ.get("IRIS_FAULT", "")


def run(data):
    global calls
    calls += 1
    if fault == "errors" and calls % 20 == 0:
        raise RuntimeError("injected failure")
    if fault == "slow":
        time.sleep(2.0)
    rows = data.tolist()
    if fault == "shifted":
        return {"predictions": [0 for _ in rows]}
    return {"predictions": [0 if r[2] < cuts[0] else (1 if r[2] < cuts[1] else 2) for r in rows]}
'''

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["data"],
    "properties": {
        "data": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}},
            "x-gitops-ml": {"kind": "ndarray", "dtype": "float64", "shape": [None, 4]},
        }
    },
}
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]


def _git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _model_yaml(version: str, sha: str, run_id: str) -> str:
    return (
        "apiVersion: gitops-ml.dev/v1\nkind: Model\nname: iris\n"
        f"version: {version}\ndescription: Iris by petal length\n"
        f"artifact:\n  uri: weights.json\n  sha256: {sha}\nlineage:\n  runId: {run_id}\n"
    )


def _deployment(environment: str, canary: bool) -> str:
    text = "apiVersion: gitops-ml.dev/v1\nkind: Deployment\n"
    if canary:
        text += (
            "model: iris@1.0.0\n"
            "rollout:\n"
            "  canary: {model: iris@1.1.0, weight: 10}\n"
            "  shadow: {model: iris@1.1.0}\n"
            f"  analysis: {{maxErrorRatio: 0.01, maxP99Seconds: 1.0, maxPredictionShift: 0.1, window: {WINDOW}}}\n"
        )
    else:
        text += "model: iris\n"
    return text + (
        "requests: {maxConcurrent: 8, queueSize: 64, timeoutSeconds: 5}\n"
        "auth: {mode: disabled}\n"
        "telemetry:\n  logging: false\n  capture: {enabled: true, sampling: 1.0}\n"
        f"exposure:\n  host: iris.{environment}.example.com\n  type: httproute\n  gateway: {{name: public, namespace: gateway-system}}\n"
    )


def make_repo(root: Path) -> tuple[Path, str]:
    """The repository (working tree: every scenario's canary declared) and the commit of iris 1.0.0."""
    root.mkdir(parents=True)
    envs = "".join(
        f"  {name}:\n    namespace: ml-{name}\n    prometheus: http://prometheus.monitoring:9090\n"
        for name in SCENARIOS
    )
    (root / "gitops-ml.yaml").write_text(
        "apiVersion: gitops-ml.dev/v1\nkind: Repository\nname: canaries\nimage:\n  registry: registry.example.com/ml\n"
        "engine: argocd\nenvironments:\n" + envs
    )
    model = root / "models" / "iris"
    model.mkdir(parents=True)
    weights = json.dumps(CUTS).encode()
    (model / "weights.json").write_bytes(weights)
    sha = hashlib.sha256(weights).hexdigest()
    (model / "score.py").write_text(SCORE)
    (model / "schema.json").write_text(json.dumps(SCHEMA, indent=2))
    (model / "sample.json").write_text(json.dumps({"data": ROWS}))
    (model / "requirements.txt").write_text("numpy>=1.26\n")
    (model / "manifest.yaml").write_text(
        "apiVersion: gitops-ml.dev/v1\nkind: Manifest\nscoring:\n  script: score.py\ndependencies:\n  requirements: requirements.txt\n"
        "schema: schema.json\nsample: sample.json\noutput:\n  kind: class\n  field: predictions\n  classes: [0, 1, 2]\n"
    )
    (model / "model.yaml").write_text(_model_yaml("1.0.0", sha, "run-1"))
    for name in SCENARIOS:
        (root / "deployments" / name).mkdir(parents=True)
        (root / "deployments" / name / "iris.yaml").write_text(_deployment(name, canary=False))
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "iris 1.0.0")
    first = _git(root, "rev-parse", "HEAD").strip()
    (model / "model.yaml").write_text(_model_yaml("1.1.0", sha, "run-2"))
    _git(root, "commit", "-qam", "iris 1.1.0")
    for name in SCENARIOS:
        (root / "deployments" / name / "iris.yaml").write_text(_deployment(name, canary=True))
    _git(root, "commit", "-qam", "canaries")
    return root, first


def checkout(repo: Path, commit: str, target: Path) -> Path:
    """A worktree of the repository at commit (the files a pinned version is served from)."""
    _git(repo, "worktree", "add", "-q", "--detach", str(target), commit)
    return target


def argo_rollouts(repo: Path) -> None:
    """Opt every environment into Argo Rollouts (render then writes AnalysisTemplates)."""
    path = repo / "gitops-ml.yaml"
    text = path.read_text()
    path.write_text(
        text.replace(
            "    prometheus: http://prometheus.monitoring:9090\n",
            "    prometheus: http://prometheus.monitoring:9090\n    rollout: {controller: argo-rollouts}\n",
        )
    )

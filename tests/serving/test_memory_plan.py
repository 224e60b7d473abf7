"""What the rendered ConfigMap carries that the server derives from the deployment file (the path
prefix, the byte budget of request bodies), and the memory rule the budget rests on."""

from __future__ import annotations

from gitops_ml.serving.settings import ServerSettings, body_budget, memory_problem, path_prefix, quantity_bytes
from gitops_ml.types import DeploymentSpec, ManifestSpec, ModelSpec


def _specs(deployment: dict[str, object]) -> ServerSettings:
    model = ModelSpec.from_doc(
        {"name": "iris", "version": "1.2.0", "artifact": {"uri": "model.joblib", "sha256": "0" * 64}}
    )
    manifest = ManifestSpec.from_doc({"scoring": {"script": "score.py"}})
    return ServerSettings.from_specs(model, manifest, DeploymentSpec.from_doc("prod", {"model": "iris", **deployment}))


def test_the_configmap_carries_the_path_prefix_and_the_body_budget() -> None:
    settings = _specs(
        {"exposure": {"host": "ml.example.com", "path": "/models/iris/"}, "resources": {"limits": {"memory": "2Gi"}}}
    )
    env = settings.to_env()
    assert env["GITOPS_ML_PATH_PREFIX"] == "/models/iris"
    assert env["GITOPS_ML_BODY_BUDGET_BYTES"] == str(body_budget(2 * 1024**3, 10 * 1024 * 1024))
    assert _specs({"exposure": {"host": "ml.example.com", "path": "/"}}).path_prefix == ""
    assert _specs({}).to_env()["GITOPS_ML_PATH_PREFIX"] == ""


def test_memory_quantities_and_the_memory_rule() -> None:
    assert [quantity_bytes(q) for q in ("1Gi", "512Mi", "1G", "1e9", "1073741824", 2048, "1.5Gi", "lots")] == [
        1024**3,
        512 * 1024**2,
        10**9,
        10**9,
        1024**3,
        2048,
        3 * 1024**3 // 2,
        None,
    ]
    assert path_prefix("/") == "" and path_prefix("/a//b/") == "/a/b"
    assert memory_problem(1024**3, 10 * 1024**2) == ""
    problem = memory_problem(256 * 1024**2, 10 * 1024**2)
    assert "resources.limits.memory (256 MiB) is too small for requests.maxBodyBytes (10.0 MiB)" in problem
    assert body_budget(256 * 1024**2, 10 * 1024**2) == 20 * 1024**2, "one body always fits"

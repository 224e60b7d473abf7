"""`gitops-ml import mlflow`: MLflow models saved with mlflow.sklearn.save_model and
mlflow.pyfunc.save_model, and logged to a real `mlflow server` (runs:/ and models:/ URIs), imported
into a repository that then validates and serves them with predictions equal to MLflow's own."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scorers.scorer_support import FEATURES, TrackingServer, Trained, free_port, gitops_ml


def _predict(repo: Path, model: str, body: object) -> dict[str, object]:
    result = gitops_ml("predict", repo / "models" / model, "--data", json.dumps(body), "--env-manager", "local")
    assert result.exit_code == 0, result.output
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def test_a_pickled_sklearn_pipeline_gets_the_sklearn_builtin_and_no_mlflow(repo: Path, trained: Trained) -> None:
    import mlflow.pyfunc

    result = gitops_ml("import", "mlflow", trained.mlflow_sklearn, "--model", "flowers", cwd=repo)
    assert result.exit_code == 0, result.output
    model = repo / "models" / "flowers"
    assert "builtin: sklearn" in (model / "manifest.yaml").read_text()
    requirements = (model / "requirements.txt").read_text()
    assert "\nscikit-learn==" in requirements and "\nmlflow" not in requirements  # pinned as recorded, MLflow left out
    schema = json.loads((model / "schema.json").read_text())
    records = schema["properties"]["dataframe_records"]
    assert records["x-gitops-ml"]["optional"] == ["petal_width"] and "petal_width" not in records["items"]["required"]
    assert (repo / "deployments" / "staging" / "flowers.yaml").read_text().endswith("model: flowers\n")
    assert (repo / "deployments" / "prod" / "flowers.yaml").read_text().endswith("model: flowers@1.0.0\n")
    assert gitops_ml("validate", cwd=repo).exit_code == 0
    assert gitops_ml("render", cwd=repo).exit_code == 0

    # the optional column left out of one record and null in another: MLflow's own predict on the same frame
    rows = trained.frame.to_dict(orient="records")
    del rows[0]["petal_width"]
    rows[1]["petal_width"] = None
    answer = _predict(repo, "flowers", {"dataframe_records": rows})
    frame = trained.frame.copy()
    frame.loc[[0, 1], "petal_width"] = np.nan
    expected = mlflow.pyfunc.load_model(str(trained.mlflow_sklearn)).predict(frame)
    assert answer == {"predictions": np.asarray(expected).tolist()}
    sample = json.loads((model / "sample.json").read_text())
    assert sample["dataframe_records"][0] == dict(zip([*FEATURES, "color"], [5.1, 3.5, 1.4, 0.2, "red"]))


def test_a_pyfunc_with_params_goes_through_mlflow_pyfunc(repo: Path, trained: Trained) -> None:
    import mlflow.pyfunc

    result = gitops_ml("import", "mlflow", trained.mlflow_pyfunc, "--model", "scale", cwd=repo)
    assert result.exit_code == 0, result.output
    model = repo / "models" / "scale"
    assert "builtin: mlflow" in (model / "manifest.yaml").read_text()
    assert "mlflow-skinny==" in (model / "requirements.txt").read_text()
    schema = json.loads((model / "schema.json").read_text())
    assert schema["properties"]["inputs"]["x-gitops-ml"] == {"kind": "ndarray", "dtype": "float32", "shape": [None, 4]}
    assert schema["properties"]["params"]["properties"]["k"] == {"type": "number", "default": 2.0}
    assert gitops_ml("validate", cwd=repo).exit_code == 0
    rows = trained.rows.astype(np.float32)
    loaded = mlflow.pyfunc.load_model(str(trained.mlflow_pyfunc))
    with_params = _predict(repo, "scale", {"inputs": rows.tolist(), "params": {"k": 5.0}})
    assert np.allclose(with_params["predictions"], loaded.predict(rows, params={"k": 5.0}))  # type: ignore[arg-type]
    default = _predict(repo, "scale", {"inputs": rows.tolist()})
    assert np.allclose(default["predictions"], loaded.predict(rows))  # type: ignore[arg-type]


def test_a_model_without_signature_or_pyfunc_is_refused_naming_the_source(
    repo: Path, trained: Trained, tmp_path: Path
) -> None:
    result = gitops_ml("import", "mlflow", trained.mlflow_unsigned, "--model", "unsigned", cwd=repo)
    assert result.exit_code == 1
    assert f"error: the MLflow model at {trained.mlflow_unsigned} has no signature" in result.output
    assert not (repo / "models" / "unsigned").exists()
    flavourless = tmp_path / "flavourless"
    flavourless.mkdir()
    (flavourless / "MLmodel").write_text(
        'flavors:\n  keras:\n    keras_version: 3.0.0\nsignature:\n  inputs: \'[{"type": "double", "name": "x"}]\'\n'
    )
    result = gitops_ml("import", "mlflow", flavourless, "--model", "kerasy", cwd=repo)
    assert result.exit_code == 1
    assert f"error: the MLflow model at {flavourless} has no python_function flavour (flavours: keras)" in result.output


def test_runs_and_models_uris_resolve_through_the_tracking_server(
    repo: Path, trained: Trained, mlflow_server: TrackingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    result = gitops_ml("import", "mlflow", "models:/flowers/1", "--model", "flowers", cwd=repo)
    assert result.exit_code == 0, result.output
    model_yaml = (repo / "models" / "flowers" / "model.yaml").read_text()
    assert "version: 1.0.0" in model_yaml and "accuracy: 0.9\n" in model_yaml
    assert f'runId: "{mlflow_server.run_id}"' in model_yaml and 'registryVersion: "flowers/1"' in model_yaml
    frame = trained.frame[FEATURES]
    answer = _predict(repo, "flowers", {"dataframe_records": frame.to_dict(orient="records")})
    assert answer == {"predictions": trained.models["array"].predict(frame.to_numpy()).tolist()}
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "import flowers 1"], cwd=repo, check=True)

    # a newer registered version is a bump, committed on a branch like `bump --branch`
    result = gitops_ml(
        "import", "mlflow", "models:/flowers/2", "--model", "flowers", "--branch", "import-flowers-2", cwd=repo
    )
    assert result.exit_code == 0, result.output
    assert "Bump flowers to 1.1.0 (1.0.0 -> 1.1.0)" in result.output
    model_yaml = (repo / "models" / "flowers" / "model.yaml").read_text()
    assert (
        "version: 1.1.0" in model_yaml
        and "accuracy: 0.95" in model_yaml
        and 'registryVersion: "flowers/2"' in model_yaml
    )
    log = subprocess.run(
        ["git", "log", "-1", "--format=%s", "import-flowers-2"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert log.stdout.strip() == "Bump flowers to 1.1.0"
    # the same or an older version is not a bump
    again = gitops_ml("import", "mlflow", "models:/flowers/1", "--model", "flowers", cwd=repo)
    assert again.exit_code == 4
    assert "models:/flowers/1 is registered version 1, not newer than the imported 2 (flowers/2)" in again.output

    run = gitops_ml("import", "mlflow", f"runs:/{mlflow_server.run_id}/model", "--model", "from-run", cwd=repo)
    assert run.exit_code == 0, run.output
    assert f'runId: "{mlflow_server.run_id}"' in (repo / "models" / "from-run" / "model.yaml").read_text()


def test_unknown_versions_and_missing_servers_are_named(
    repo: Path, mlflow_server: TrackingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    unknown = gitops_ml("import", "mlflow", "models:/flowers/9", "--model", "flowers", cwd=repo)
    assert unknown.exit_code == 4
    assert f"error: models:/flowers/9: the tracking server {mlflow_server.url} has no such model" in unknown.output
    assert "hint: registered versions of flowers: 1, 2" in unknown.output
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    unset = gitops_ml("import", "mlflow", "models:/flowers/1", "--model", "flowers", cwd=repo)
    assert unset.exit_code == 3
    assert "error: models:/flowers/1: MLFLOW_TRACKING_URI is not set" in unset.output
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", closed)
    down = gitops_ml("import", "mlflow", "models:/flowers/1", "--model", "flowers", cwd=repo)
    assert down.exit_code == 5
    assert f"error: models:/flowers/1: the tracking server {closed} does not answer" in down.output
    assert not (repo / "models" / "flowers").exists()

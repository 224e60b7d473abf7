"""End to end for built-in scorers: MLflow models imported (a pickled scikit-learn pipeline, a pyfunc
with params) and an ONNX graph declared, built into images through the real Docker engine, started
with `run-image` and scored on their samples inside the images; predictions equal the libraries'.
The sklearn and onnx images carry no MLflow; the pyfunc image carries mlflow-skinny, not mlflow."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from e2e.test_images import BASE_IMAGE, REGISTRY, _git, _missing, gitops_ml
from scorers.scorer_support import train
from support import require

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, object]], object]:
    reason = _missing()
    require(not reason, reason)
    work = tmp_path_factory.mktemp("builtin-images")
    (work / "trained").mkdir()
    trained = train(work / "trained")
    repo = work / "repo"
    assert gitops_ml("init", str(repo), cwd=work).returncode == 0
    shutil.rmtree(repo / "models" / "iris")
    for path in (repo / "deployments").rglob("iris.yaml"):
        path.unlink()
    config = repo / "gitops-ml.yaml"
    text = re.sub(r"registry: .*", f"registry: {REGISTRY}/e2e-{uuid.uuid4().hex[:8]}", config.read_text())
    config.write_text(
        re.sub(r"baseImage: .*", f"baseImage: {BASE_IMAGE}", text)
        if "baseImage:" in text
        else text.replace("image:\n", f"image:\n  baseImage: {BASE_IMAGE}\n", 1)
    )
    for source, name in ((trained.mlflow_sklearn, "flowers"), (trained.mlflow_pyfunc, "scale")):
        result = gitops_ml("import", "mlflow", str(source), "--model", name, cwd=repo)
        assert result.returncode == 0, result.stderr
    onnx = repo / "models" / "onnx-iris"
    onnx.mkdir()
    shutil.copy(trained.onnx_float32, onnx / "model.onnx")
    sha = hashlib.sha256(trained.onnx_float32.read_bytes()).hexdigest()
    (onnx / "model.yaml").write_text(
        f"apiVersion: gitops-ml.dev/v1\nkind: Model\nname: onnx-iris\nversion: 1.0.0\nartifact:\n  uri: model.onnx\n  sha256: {sha}\n"
    )
    (onnx / "manifest.yaml").write_text(
        "apiVersion: gitops-ml.dev/v1\nkind: Manifest\nscoring:\n  builtin: onnx\n  probabilities: true\nschema: schema.json\nsample: sample.json\n"
    )
    (onnx / "sample.json").write_text(json.dumps({"X": trained.rows.astype(np.float32).tolist()}))
    assert (
        gitops_ml(
            "schema",
            "generate",
            "--model",
            str(onnx / "model.onnx"),
            "--sample",
            str(onnx / "sample.json"),
            "-o",
            str(onnx / "schema.json"),
            cwd=repo,
        ).returncode
        == 0
    )
    (repo / "deployments" / "staging" / "onnx-iris.yaml").write_text(
        "apiVersion: gitops-ml.dev/v1\nkind: Deployment\nmodel: onnx-iris\n"
    )
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "built-in models")
    wheels = work / "runtime"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    import e2e.test_images as images

    images._RUNTIME["GITOPS_ML_RUNTIME_WHEEL"] = str(next(wheels.glob("gitops_ml-*.whl")))
    result = gitops_ml("build", "--format", "json", cwd=repo)
    assert result.returncode == 0, result.stderr
    return repo, {i["model"]: i for i in json.loads(result.stdout)["images"]}, trained


def _score_in_image(repo: Path, model: str) -> dict[str, object]:
    ran = gitops_ml("run-image", model, "--env", "staging", "--format", "json", cwd=repo)
    assert ran.returncode == 0, ran.stderr
    answer = json.loads(ran.stdout)
    assert answer["status"] == 200, answer
    body: dict[str, object] = json.loads(answer["body"])
    return body


def _has_module(ref: str, module: str) -> bool:
    probe = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/opt/gitops-ml/venv/bin/python", ref, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.returncode == 0


def _size(ref: str) -> int:
    return int(
        subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Size}}", ref], capture_output=True, text=True, check=True
        ).stdout
    )


def test_imported_and_declared_builtins_score_inside_their_images(
    built: tuple[Path, dict[str, dict[str, object]], object],
) -> None:
    import mlflow.pyfunc

    repo, images, trained = built
    assert set(images) == {"flowers", "scale", "onnx-iris"}
    import pandas as pd

    flowers = _score_in_image(repo, "flowers")  # its sample: the input example MLflow saved
    sample = pd.DataFrame(json.loads((repo / "models" / "flowers" / "sample.json").read_text())["dataframe_records"])
    expected = mlflow.pyfunc.load_model(str(trained.mlflow_sklearn)).predict(sample)  # type: ignore[attr-defined]
    assert flowers == {"predictions": np.asarray(expected).tolist()}
    scale = _score_in_image(repo, "scale")
    rows = trained.rows[:2].astype(np.float32)  # type: ignore[attr-defined]
    assert np.allclose(
        scale["predictions"], mlflow.pyfunc.load_model(str(trained.mlflow_pyfunc)).predict(rows, params={"k": 3.0})
    )  # type: ignore[arg-type,attr-defined]
    onnx = _score_in_image(repo, "onnx-iris")
    assert onnx["predictions"] == trained.models["array"].predict(trained.rows).tolist()  # type: ignore[attr-defined]
    assert onnx["classes"] == [0, 1, 2]

    sklearn_ref, pyfunc_ref, onnx_ref = (str(images[m]["ref"]) for m in ("flowers", "scale", "onnx-iris"))
    assert not _has_module(sklearn_ref, "mlflow") and not _has_module(onnx_ref, "mlflow"), (
        "a built-in that needs no MLflow gets none"
    )
    assert _has_module(pyfunc_ref, "mlflow.pyfunc") and not _has_module(pyfunc_ref, "mlflow.server"), (
        "mlflow-skinny, not the MLflow server"
    )
    print(
        f"\nimage sizes: sklearn built-in {_size(sklearn_ref) / 1e6:.0f} MB, onnx built-in {_size(onnx_ref) / 1e6:.0f} MB, "
        f"mlflow built-in (mlflow-skinny) {_size(pyfunc_ref) / 1e6:.0f} MB"
    )

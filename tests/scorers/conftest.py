"""Tiny models trained once per session with the real libraries and saved the way their users save
them (joblib.dump, save_model, skl2onnx, mlflow.<flavour>.save_model, log_model to a real `mlflow
server` on 127.0.0.1), and a repository factory to declare or import them in."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from scorers.scorer_support import SERVER_DEADLINE, TrackingServer, Trained, free_port, gitops_ml, train
from support import require


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return train(tmp_path_factory.mktemp("trained"))


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory, trained: Trained) -> Iterator[TrackingServer]:
    """`mlflow server` with a file store on 127.0.0.1; `flowers` registered twice (versions 1 and 2) by log_model."""
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    require(mlflow_bin.is_file(), "the `mlflow` command is missing (pip install -e '.[dev]')")
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, MLFLOW_ALLOW_FILE_STORE="true")
    log = open(root / "server.log", "wb")
    process = subprocess.Popen(
        [
            str(mlflow_bin),
            "server",
            "--backend-store-uri",
            f"file://{root / 'store'}",
            "--artifacts-destination",
            f"file://{root / 'artifacts'}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + SERVER_DEADLINE
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"mlflow server exited ({process.returncode}):\n{(root / 'server.log').read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"mlflow server did not answer within {SERVER_DEADLINE:g} s:\n{(root / 'server.log').read_text()[-3000:]}"
                )
            time.sleep(0.2)
        run_id = _log_versions(url, trained)
        yield TrackingServer(url, run_id)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


LOG_VERSIONS = """
import sys, warnings
import joblib, mlflow
from mlflow.models import infer_signature
model, frame = joblib.load(sys.argv[1]), joblib.load(sys.argv[2])
warnings.simplefilter("ignore")
mlflow.set_experiment("flowers")
for accuracy in (0.9, 0.95):
    with mlflow.start_run() as run:
        mlflow.log_metric("accuracy", accuracy)
        mlflow.sklearn.log_model(model, name="model", registered_model_name="flowers", serialization_format="cloudpickle",
                                 signature=infer_signature(frame, model.predict(frame.to_numpy())), input_example=frame.iloc[:2])
        print(run.info.run_id)
"""


def _log_versions(url: str, trained: Trained) -> str:
    """log_model twice to the server, as a training job does (in its own process: MLflow's client keeps global state)."""
    import joblib

    frame_file = trained.root / "frame.joblib"
    joblib.dump(trained.frame.drop(columns=["color"]), frame_file)
    env = dict(os.environ, MLFLOW_TRACKING_URI=url)
    result = subprocess.run(
        [sys.executable, "-c", LOG_VERSIONS, str(trained.array_joblib), str(frame_file)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()[0]


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A new repository (`gitops-ml init`), committed."""
    root = tmp_path / "repo"
    result = gitops_ml("init", root)
    assert result.exit_code == 0, result.output
    shutil.rmtree(root / "models" / "iris")
    for path in (root / "deployments").rglob("iris.yaml"):
        path.unlink()
    shutil.rmtree(root / "training", ignore_errors=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "commit", "-qm", "init"], cwd=root, check=True)
    return root

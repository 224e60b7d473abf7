"""Helpers of the built-in scorer tests: the CLI in-process, and what the session's trained models are."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from click.testing import CliRunner

from gitops_ml.cli.main import cli

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
SERVER_DEADLINE = 120.0  # `mlflow server` imports a lot; a loaded 2-core machine takes its time

PYFUNC_CODE = '''
import mlflow
import numpy as np


class Scale(mlflow.pyfunc.PythonModel):
    """Multiplies its input by the `k` param: a pyfunc with params and a tensor signature."""

    def predict(self, context, model_input, params=None):
        return np.asarray(model_input) * float((params or {}).get("k", 2.0))


mlflow.models.set_model(Scale())
'''


def gitops_ml(*args: str | Path, cwd: Path | None = None) -> Any:
    """The CLI in this process (click's runner), from `cwd`."""
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)


@dataclass(frozen=True)
class Trained:
    """Where each saved model is, and the rows to score them on."""

    root: Path
    rows: np.ndarray  # 5 iris rows, float64
    frame: pd.DataFrame  # the same rows with named columns and a `color` column (petal_width optional)
    array_joblib: Path  # LogisticRegression fitted on an array
    pipeline_joblib: Path  # a pipeline fitted on the DataFrame (imputer on the numbers, one-hot on color)
    xgboost_json: Path
    lightgbm_txt: Path
    onnx_float32: Path  # skl2onnx of the array model, float32 input with a free batch dimension
    mlflow_sklearn: Path  # mlflow.sklearn.save_model of the pipeline, with a signature (petal_width optional) and an input example
    mlflow_pyfunc: Path  # a models-from-code pyfunc with a float32 tensor signature and a `k` param
    mlflow_unsigned: Path  # mlflow.sklearn.save_model without signature or example
    models: dict[str, Any]


def _frame(X: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(X, columns=FEATURES)
    frame["color"] = np.where(y == 0, "red", "blue")
    return frame


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TrackingServer:
    url: str
    run_id: str  # the run that logged version 1 of `flowers`



"""Helpers of the built-in scorer tests: the CLI in-process, and what the session's trained models are."""

from __future__ import annotations

import os
import socket
import warnings
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
    mlflow_sklearn: (
        Path  # mlflow.sklearn.save_model of the pipeline, with a signature (petal_width optional) and an input example
    )
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


def train(root: Path) -> Trained:
    """Every model of the tests, trained on iris and saved under root."""
    import joblib
    import lightgbm as lgb
    import mlflow
    import xgboost as xgb
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, ParamSchema, ParamSpec, Schema, TensorSpec
    from skl2onnx import to_onnx
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_iris
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    X, y = load_iris(return_X_y=True)
    rows = X[[0, 1, 60, 100, 140]]
    frame = _frame(X, y)
    array_model = LogisticRegression(max_iter=500).fit(X, y)
    pipeline = make_pipeline(
        ColumnTransformer(
            [("num", SimpleImputer(), FEATURES), ("cat", OneHotEncoder(handle_unknown="ignore"), ["color"])]
        ),
        LogisticRegression(max_iter=500),
    ).fit(frame, y)
    joblib.dump(array_model, root / "array.joblib")
    joblib.dump(pipeline, root / "pipeline.joblib")
    booster_model = xgb.XGBClassifier(n_estimators=8, max_depth=2).fit(X, y)
    booster_model.save_model(root / "model.json")
    lgb_model = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_leaves": 4},
        lgb.Dataset(X, y),
        num_boost_round=5,
    )
    lgb_model.save_model(str(root / "model.txt"))
    onnx = to_onnx(array_model, X[:1].astype(np.float32), target_opset={"": 17, "ai.onnx.ml": 3})
    (root / "model.onnx").write_bytes(onnx.SerializeToString())
    signature = ModelSignature(
        inputs=Schema(
            [ColSpec("double", c) for c in FEATURES[:3]]
            + [ColSpec("double", "petal_width", required=False), ColSpec("string", "color")]
        ),
        outputs=Schema([ColSpec("long")]),
    )
    code = root / "scale.py"
    code.write_text(PYFUNC_CODE)
    pyfunc_signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype("float32"), (-1, 4))]), params=ParamSchema([ParamSpec("k", "double", 2.0)])
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's advice about pickles and type hints: setup, not the behaviour tested
        mlflow.sklearn.save_model(
            pipeline,
            root / "mlflow-sklearn",
            signature=signature,
            input_example=frame.iloc[:3],
            serialization_format="cloudpickle",
        )
        mlflow.pyfunc.save_model(
            root / "mlflow-pyfunc",
            python_model=str(code),
            signature=pyfunc_signature,
            input_example=(X[:2].astype(np.float32), {"k": 3.0}),
        )
        mlflow.sklearn.save_model(array_model, root / "mlflow-unsigned", serialization_format="cloudpickle")
    return Trained(
        root,
        rows,
        _frame(rows, np.array([0, 0, 1, 2, 2])),
        root / "array.joblib",
        root / "pipeline.joblib",
        root / "model.json",
        root / "model.txt",
        root / "model.onnx",
        root / "mlflow-sklearn",
        root / "mlflow-pyfunc",
        root / "mlflow-unsigned",
        {"array": array_model, "pipeline": pipeline, "xgboost": booster_model, "lightgbm": lgb_model},
    )

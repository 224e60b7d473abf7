"""Built-in `mlflow`: an MLflow model (any flavour with a python_function loader) through
mlflow.pyfunc, from the zip `gitops-ml import mlflow` writes. MLflow enforces the model's signature
as it does in its own server; a request's `params` input goes to predict(params=...). A DataFrame
answers as records, like MLflow's scoring server.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from gitops_ml.errors import LoadError, Location
from gitops_ml.serving.builtins._common import BuiltinScorer, Outputs, as_table, join, rows_of
from gitops_ml.serving.builtins.mlmodel import read_mlmodel

PARAMS = "params"


def unpack(artifact: Path) -> Path:
    """The zip unpacked into a private temporary directory (the image's root filesystem is read-only;
    /tmp is not), removed at exit. zipfile drops absolute paths and `..` from member names."""
    target = Path(tempfile.mkdtemp(prefix="gitops-ml-mlflow-"))
    atexit.register(shutil.rmtree, target, True)
    with zipfile.ZipFile(artifact) as zf:
        zf.extractall(target)
    return target


class Scorer(BuiltinScorer):
    builtin = "mlflow"

    def load(self) -> None:
        where = Location(str(self.artifact))
        info = read_mlmodel(self.artifact)
        if "python_function" not in info.flavors:
            flavours = ", ".join(sorted(info.flavors)) or "none"
            raise LoadError(f"the MLflow model has no python_function flavour (flavours: {flavours}), so mlflow.pyfunc cannot load it",
                            location=where, hint="log the model with a flavour that has a pyfunc loader, or write a score.py")
        directory = self.artifact if self.artifact.is_dir() else unpack(self.artifact)
        import mlflow.pyfunc  # noqa: PLC0415 - mlflow-skinny, in the image for this built-in only

        try:
            self.model = mlflow.pyfunc.load_model(str(directory))
        except Exception as exc:  # noqa: BLE001 - any flavour's loader may fail in its own way
            raise LoadError(f"mlflow.pyfunc cannot load the model: {type(exc).__name__}: {str(exc).splitlines()[0][:400] if str(exc) else ''}",
                            location=where, hint="the model's requirements must hold what its flavour imports, at the versions it was saved with") from exc

    def features(self, data: Any) -> Any:
        params = None
        if isinstance(data, dict) and PARAMS in self.options.input_names:
            data = dict(data)
            params = data.pop(PARAMS, None)
            if len(data) == 1:
                data = next(iter(data.values()))
        if not isinstance(data, dict):
            data = as_table(data)
        return _Request(data, params)

    def run_batch(self, items: Any) -> list[dict[str, Any]]:
        requests = [self.features(item) for item in items]
        # predict() takes one params per call: requests with params are scored one by one
        joined = None if any(r.params is not None for r in requests) else join([r.data for r in requests])
        if joined is None:
            return [self.call(r).answer() for r in requests]
        return self.split_or_each(self.call(_Request(joined, None)), requests, [rows_of(r.data) for r in requests])

    def predict(self, features: Any) -> Outputs:
        request = features if isinstance(features, _Request) else _Request(features, None)
        if request.params is not None:
            return Outputs(self.model.predict(request.data, params=request.params))
        return Outputs(self.model.predict(request.data))


class _Request:
    """One request's model input and its params."""

    __slots__ = ("data", "params")

    def __init__(self, data: Any, params: Any) -> None:
        self.data = data
        self.params = params

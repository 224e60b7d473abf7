"""Built-in `lightgbm`: a LightGBM model text file (Booster.save_model, or an LGBMModel's booster_).
Classifiers answer the class index (LightGBM's file keeps no labels) and, when asked, the
probabilities; other objectives answer what Booster.predict returns. A pickled LGBMClassifier is
an estimator: serve it with the sklearn built-in to keep its labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gitops_ml.errors import LoadError, Location
from gitops_ml.serving.builtins._common import BuiltinScorer, Outputs, select_columns


def objective_of(header: str) -> tuple[str, int]:
    """(objective, number of classes) from the model file's header lines."""
    objective, classes = "", 1
    for line in header.splitlines():
        if line.startswith("objective="):
            objective = line.partition("=")[2].split()[0] if line.partition("=")[2].split() else ""
        elif line.startswith("num_class="):
            classes = int(line.partition("=")[2] or 1)
        elif line.startswith("Tree="):
            break
    return objective, classes


class Scorer(BuiltinScorer):
    builtin = "lightgbm"

    def load(self) -> None:
        import lightgbm as lgb  # noqa: PLC0415 - the model's own requirement

        where = Location(str(self.artifact))
        try:
            self.booster = lgb.Booster(model_file=str(self.artifact))
        except lgb.basic.LightGBMError as exc:
            raise LoadError(f"LightGBM cannot load the artifact: {exc}", location=where) from exc
        with open(self.artifact, encoding="utf-8", errors="replace") as fh:
            header = "".join(line for _, line in zip(range(64), fh))
        self.objective, self.n_classes = objective_of(header)
        self.classifier = self.objective in ("binary", "multiclass", "multiclassova", "cross_entropy")
        if self.options.probabilities and not self.classifier:
            raise LoadError(f"scoring.probabilities is set, but the model's objective is {self.objective or 'unknown'}, not a classification",
                            location=where, hint="remove `probabilities: true` from the manifest")
        self.names = list(self.booster.feature_name())

    def features(self, data: Any) -> Any:
        table = super().features(data)
        if isinstance(table, pd.DataFrame) and self.names and set(self.names) <= set(table.columns):
            return select_columns(table, self.names)
        return table

    def predict(self, features: Any) -> Outputs:
        raw = np.asarray(self.booster.predict(features))
        if not self.classifier:
            return Outputs(raw)
        if raw.ndim == 1:  # binary: the probability of class 1
            probabilities = np.column_stack([1.0 - raw, raw])
        else:
            probabilities = raw
        predictions = probabilities.argmax(axis=1)
        if not self.options.probabilities:
            return Outputs(predictions)
        return Outputs(predictions, probabilities, list(range(probabilities.shape[1])))

"""Built-in `xgboost`: a model saved with XGBoost's save_model (.json or .ubj). Models saved from the
scikit-learn API (XGBClassifier, XGBRegressor...) answer as those do, with probabilities and classes
for classifiers; a Booster trained with xgboost.train answers what Booster.predict returns.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml.errors import LoadError, Location
from gitops_ml.serving.builtins._common import BuiltinScorer, Outputs, frame_for, plain_classes, select_columns


class Scorer(BuiltinScorer):
    builtin = "xgboost"

    def load(self) -> None:
        import xgboost as xgb  # noqa: PLC0415 - the model's own requirement

        where = Location(str(self.artifact))
        booster = xgb.Booster()
        try:
            booster.load_model(str(self.artifact))
        except xgb.core.XGBoostError as exc:
            raise LoadError(f"XGBoost cannot load the artifact: {str(exc).splitlines()[0]}", location=where) from exc
        kind = json.loads(booster.attr("scikit_learn") or "{}").get("_estimator_type", "")
        self.model: Any = None
        self.booster = booster
        if kind in ("classifier", "regressor"):
            self.model = xgb.XGBClassifier() if kind == "classifier" else xgb.XGBRegressor()
            self.model.load_model(str(self.artifact))
        if self.options.probabilities and kind != "classifier":
            raise LoadError("scoring.probabilities is set, but the artifact is not an XGBClassifier saved with save_model", location=where,
                            hint="remove `probabilities: true`, or save the classifier with XGBClassifier.save_model")
        self.names = list(booster.feature_names or [])
        self.classes = plain_classes(getattr(self.model, "classes_", None)) if kind == "classifier" else None
        self.dmatrix = xgb.DMatrix

    def features(self, data: Any) -> Any:
        table = super().features(data)
        if isinstance(table, pd.DataFrame):
            return select_columns(table, self.names) if self.names else table
        return frame_for(np.asarray(table), self.names)

    def predict(self, features: Any) -> Outputs:
        if self.model is None:
            return Outputs(self.booster.predict(self.dmatrix(features)))
        predictions = self.model.predict(features)
        if not self.options.probabilities:
            return Outputs(predictions)
        return Outputs(predictions, self.model.predict_proba(features), self.classes)

"""Built-in `sklearn`: a scikit-learn estimator or pipeline saved with joblib.dump, pickle or
cloudpickle (what mlflow.sklearn writes as model.pkl). predict(), and predict_proba() with the
estimator's classes_ when the manifest asks for probabilities.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml.errors import LoadError, Location
from gitops_ml.serving.builtins._common import BuiltinScorer, Outputs, frame_for, plain_classes, select_columns


def load_estimator(path: Path) -> Any:
    """The unpickled estimator; LoadError located at the file when it is not one."""
    import joblib  # noqa: PLC0415 - scikit-learn's own dependency, in the image with it

    try:
        model = joblib.load(path)
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, IndexError) as exc:
        raise LoadError(f"cannot unpickle the artifact: {exc}", location=Location(str(path)),
                        hint="builtin sklearn loads files written by joblib.dump or pickle.dump") from exc
    except (ModuleNotFoundError, AttributeError) as exc:
        raise LoadError(f"the pickle needs code this image does not have: {exc}", location=Location(str(path)),
                        hint="add the package to the model's requirements (with the version it was saved with), or a module "
                             "the pickle refers to under `include:`") from exc
    if not callable(getattr(model, "predict", None)):
        raise LoadError(f"the artifact holds a {type(model).__name__}, which has no predict()", location=Location(str(path)),
                        hint="save the fitted estimator or pipeline itself")
    return model


def feature_names(model: Any) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else []


class Scorer(BuiltinScorer):
    builtin = "sklearn"

    def load(self) -> None:
        self.model = load_estimator(self.artifact)
        if self.options.probabilities and not callable(getattr(self.model, "predict_proba", None)):
            raise LoadError(f"scoring.probabilities is set, but a {type(self.model).__name__} has no predict_proba()",
                            location=Location(str(self.artifact)), hint="remove `probabilities: true` from the manifest, or save a classifier")
        self.names = feature_names(self.model)
        self.classes = plain_classes(getattr(self.model, "classes_", None))

    def features(self, data: Any) -> Any:
        table = super().features(data)
        if isinstance(table, pd.DataFrame):
            # a model fitted on an array warns on named columns: give it the values
            return select_columns(table, self.names) if self.names else table.to_numpy()
        return frame_for(np.asarray(table), self.names)

    def predict(self, features: Any) -> Outputs:
        predictions = self.model.predict(features)
        if not self.options.probabilities:
            return Outputs(predictions)
        return Outputs(predictions, self.model.predict_proba(features), self.classes)

    def expected(self) -> str:
        if self.names:
            return "records with columns " + ", ".join(self.names)
        width = getattr(self.model, "n_features_in_", None)
        return f"rows of {width} numbers" if width else "rows of numbers"

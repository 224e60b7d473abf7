"""Train the example models from scikit-learn's bundled data sets (no download), write each one's
reference profile (its training inputs and predictions, for `gitops-ml monitor`) with
`gitops-ml profile`, and print the model.yaml fields to update. Deterministic: same scikit-learn
version -> same artifacts and profiles.

    python training/train.py    # writes models/{iris,digits}/model.joblib and models/{iris,digits}/reference.json
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import joblib
import pandas as pd
from sklearn.datasets import load_digits, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = Path(__file__).resolve().parent.parent


def _save(model: object, name: str, metrics: dict[str, float]) -> dict[str, object]:
    path = ROOT / "models" / name / "model.joblib"
    joblib.dump(model, path, compress=3)
    data = path.read_bytes()
    return {"model": name, "uri": "model.joblib", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "metrics": metrics}


def _profile(name: str, data: pd.DataFrame, *options: str) -> None:
    """The reference profile of the training data: `gitops-ml profile` reads the columns the way the
    server reads requests (the input schema says how) and writes models/<name>/reference.json."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"{name}-train.csv"
        data.to_csv(path, index=False)
        command = [sys.executable, "-m", "gitops_ml", "profile", str(path), "--model", name, "--repo", str(ROOT), *options]
        subprocess.run(command, check=True, stdout=sys.stderr)


def train_iris() -> dict[str, object]:
    x, y = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500, random_state=0))  # 1.1.0: stronger regularisation
    model.fit(x_train, y_train)
    # the four columns in the order of the input `data` (an array of shape (n, 4)), then the answer's `predictions`
    data = pd.DataFrame(x_train, columns=["sepal_length", "sepal_width", "petal_length", "petal_width"])
    data["predictions"] = model.predict(x_train)
    _profile("iris", data, "--prediction", "predictions")
    return _save(model, "iris", {"accuracy": round(float(model.score(x_test, y_test)), 4)})


def train_digits() -> dict[str, object]:
    x, y = load_digits(return_X_y=True)  # 8x8 images, pixel values 0..16
    x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, test_size=0.3, random_state=0, stratify=y)
    model = LogisticRegression(max_iter=2000, random_state=0)
    model.fit(x_train, y_train)
    # the input is a PNG image (no per-column features): the profile holds the predicted digits
    _profile("digits", pd.DataFrame({"digit": model.predict(x_train)}), "--prediction", "digit")
    return _save(model, "digits", {"accuracy": round(float(model.score(x_test, y_test)), 4)})


if __name__ == "__main__":
    wanted = set(sys.argv[1:]) or {"iris", "digits"}
    results = [fn() for name, fn in (("iris", train_iris), ("digits", train_digits)) if name in wanted]
    print(json.dumps(results, indent=2))

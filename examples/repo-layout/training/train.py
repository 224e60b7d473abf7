"""Train the example models from scikit-learn's bundled data sets (no download) and print the
model.yaml fields to update. Deterministic: same scikit-learn version -> same artifacts.

    python training/train.py            # writes models/iris/model.joblib and models/digits/model.joblib
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import joblib
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


def train_iris() -> dict[str, object]:
    x, y = load_iris(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=500, random_state=0))  # 1.1.0: stronger regularisation
    model.fit(x_train, y_train)
    return _save(model, "iris", {"accuracy": round(float(model.score(x_test, y_test)), 4)})


def train_digits() -> dict[str, object]:
    x, y = load_digits(return_X_y=True)  # 8x8 images, pixel values 0..16
    x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, test_size=0.3, random_state=0, stratify=y)
    model = LogisticRegression(max_iter=2000, random_state=0)
    model.fit(x_train, y_train)
    return _save(model, "digits", {"accuracy": round(float(model.score(x_test, y_test)), 4)})


if __name__ == "__main__":
    wanted = set(sys.argv[1:]) or {"iris", "digits"}
    results = [fn() for name, fn in (("iris", train_iris), ("digits", train_digits)) if name in wanted]
    print(json.dumps(results, indent=2))

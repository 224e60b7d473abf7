"""Retrain the iris model with NumPy only (softmax regression by gradient descent on iris.csv).

The retrain workflow runs this with MODEL and OUTPUT_DIR set; by hand: `python training/train.py`.
It writes models/iris/model.json (the artifact model.yaml points at) and $OUTPUT_DIR/metrics.json,
then `gitops-ml bump iris --artifact model.json --sha256 <printed> --metrics <metrics.json>`
turns the result into a pull request.
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ["setosa", "versicolor", "virginica"]


def load():
    lines = (ROOT / "training" / "iris.csv").read_text().splitlines()[1:]
    x = np.array([[float(v) for v in line.split(",")[:4]] for line in lines])
    y = np.array([CLASSES.index(line.split(",")[4]) for line in lines])
    return x, y


def split(x, y, seed=0, test=0.3):
    order = np.random.default_rng(seed).permutation(len(y))
    cut = int(len(y) * (1 - test))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def train(x, y, epochs=2000, rate=0.1, l2=1e-3):
    mean, scale = x.mean(axis=0), x.std(axis=0)
    z = (x - mean) / scale
    onehot = np.eye(len(CLASSES))[y]
    coef, intercept = np.zeros((len(CLASSES), x.shape[1])), np.zeros(len(CLASSES))
    for _ in range(epochs):
        logits = z @ coef.T + intercept
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        grad = (p - onehot) / len(y)
        coef -= rate * (grad.T @ z + l2 * coef)
        intercept -= rate * grad.sum(axis=0)
    return {"classes": CLASSES, "mean": mean.round(6).tolist(), "scale": scale.round(6).tolist(),
            "coef": coef.round(6).tolist(), "intercept": intercept.round(6).tolist()}


def accuracy(model, x, y):
    z = (x - np.array(model["mean"])) / np.array(model["scale"])
    return float(((z @ np.array(model["coef"]).T + model["intercept"]).argmax(axis=1) == y).mean())


if __name__ == "__main__":
    x, y = load()
    x_train, y_train, x_test, y_test = split(x, y)
    model = train(x_train, y_train)
    artifact = ROOT / "models" / os.environ.get("MODEL", "iris") / "model.json"
    artifact.write_text(json.dumps(model, indent=1) + "\n")
    metrics = {"accuracy": round(accuracy(model, x_test, y_test), 4)}
    out = Path(os.environ.get("OUTPUT_DIR", ROOT / "training" / "output"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics) + "\n")
    print(json.dumps({"artifact": str(artifact.relative_to(ROOT)), "sha256": hashlib.sha256(artifact.read_bytes()).hexdigest(), **metrics}))

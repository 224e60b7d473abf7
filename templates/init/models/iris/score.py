"""Scores iris measurements with a softmax regression stored as JSON weights (NumPy only).

init() runs once when the server starts; run(data) runs per request, with `data` decoded by the
server from the request according to schema.json: a float64 array of shape (n, 4).
"""

import json
import os

import numpy as np

weights = None


def init():
    global weights
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.json"), encoding="utf-8") as fh:
        doc = json.load(fh)
    weights = {key: np.asarray(value) for key, value in doc.items()}


def run(data):
    x = (np.asarray(data, dtype=np.float64) - weights["mean"]) / weights["scale"]
    scores = x @ weights["coef"].T + weights["intercept"]
    best = scores.argmax(axis=1)
    return {"predictions": best.tolist(), "labels": weights["classes"][best].tolist()}

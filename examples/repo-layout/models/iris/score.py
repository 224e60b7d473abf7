"""Scores iris measurements. The server decodes the single input `data` into a float64 array of
shape (n, 4) and passes it to run(); with batching enabled (scoring.batch in the manifest) run()
receives a list of such arrays, one per request, and returns one result per request."""

import os

import joblib
import numpy as np

from gitops_ml.serving import InputError

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.joblib"))


def _predict(x):
    # Any finite JSON number fits the schema, but values near 1e308 overflow the scaler: clip to a
    # range far beyond real measurements (centimetres) so every schema-valid request is scored.
    try:
        return model.predict(np.clip(x, -1e9, 1e9)).tolist()
    except ValueError as exc:  # values so large that scaling overflows: the input's fault, a 422
        raise InputError(f"data: cannot be scored ({exc})", field="data", expected="finite measurements") from None


def run(data):
    if isinstance(data, list):  # a batch: one predict call for every request's rows
        predictions = _predict(np.concatenate(data))
        results, start = [], 0
        for rows in data:
            results.append({"predictions": predictions[start : start + len(rows)]})
            start += len(rows)
        return results
    return {"predictions": _predict(data)}

"""Scores iris measurements. The server decodes the single input `data` into a float64 array of
shape (n, 4) and passes it to run(); with batching enabled (scoring.batch in the manifest) run()
receives a list of such arrays, one per request, and returns one result per request."""

import os

import joblib
import numpy as np

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.joblib"))


def run(data):
    if isinstance(data, list):  # a batch: one predict call for every request's rows
        predictions = model.predict(np.concatenate(data)).tolist()
        results, start = [], 0
        for rows in data:
            results.append({"predictions": predictions[start : start + len(rows)]})
            start += len(rows)
        return results
    return {"predictions": model.predict(data).tolist()}

"""Scores iris measurements: `data` is a float64 array of shape (n, 4)."""

import os

import joblib

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.joblib"))


def run(image, options):
    return {"predictions": model.predict(image).tolist()}

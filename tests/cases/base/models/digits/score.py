"""Scores 8x8 digit images. Batch-enabled: `run` receives a list of inputs, each a dict with
`image` (PNG bytes, decoded from base64 by the server) and `options` ({"top_k": int})."""

import io
import os

import joblib
import numpy as np
from PIL import Image

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.joblib"))


def _pixels(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png)).convert("L")
    if image.size != (8, 8):
        image = image.resize((8, 8))
    return np.asarray(image, dtype=np.float64).reshape(64) / 255.0


def run(batch):
    x = np.stack([_pixels(item["image"]) for item in batch])
    probabilities = model.predict_proba(x)
    results = []
    for item, p in zip(batch, probabilities):
        top_k = int((item.get("options") or {}).get("top_k", 1))
        best = np.argsort(p)[::-1][:top_k]
        results.append(
            {"digit": int(best[0]), "top": [{"digit": int(d), "probability": round(float(p[d]), 4)} for d in best]}
        )
    return results

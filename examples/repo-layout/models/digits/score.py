"""Scores 8x8 digit images. Batch-enabled: run() receives a list of inputs, one per request, each a
dict with `image` (PNG bytes, decoded from base64 by the server) and `options` ({"top_k": int}),
and returns one result per input."""

import io
import os

import joblib
import numpy as np
from PIL import Image, UnidentifiedImageError

from gitops_ml.serving import InputError

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.joblib"))


MAX_SIDE = 1024  # digits are 8x8; anything far larger is a mistake or a decompression bomb


def _pixels(png: bytes) -> np.ndarray:
    try:
        image = Image.open(io.BytesIO(png))  # reads the header only: the size is known before decoding
        if max(image.size) > MAX_SIDE:
            raise InputError(f"image: {image.size[0]}x{image.size[1]} pixels, more than {MAX_SIDE} on a side", field="image", expected=f"a PNG of at most {MAX_SIDE}x{MAX_SIDE} pixels")
        image = image.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(f"image: not a readable PNG ({exc})", field="image", expected="a PNG image") from None
    if image.size != (8, 8):
        image = image.resize((8, 8))
    return np.asarray(image, dtype=np.float64).reshape(64) / 255.0


def run(batch):
    x = np.stack([_pixels(item["image"]) for item in batch])
    probabilities = model.predict_proba(x)
    results = []
    for item, p in zip(batch, probabilities):
        top_k = min(max(int(item["options"].get("top_k", 1)), 1), len(p))
        best = np.argsort(p)[::-1][:top_k]
        results.append({"digit": int(best[0]), "top": [{"digit": int(d), "probability": round(float(p[d]), 4)} for d in best]})
    return results

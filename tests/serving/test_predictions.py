"""Metrics that tell versions apart: identity labels on every family, predictions by class (bounded)
or as a score histogram when the output is declared, captures sampled alike by stable and shadow."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

from serving.conftest import Server, write_model

from gitops_ml.serving.predictions import OTHER, OutputDeclaration, Predictions, sampled

CLASSES_SCORE = """
def init():
    pass

def run(data):
    # the class is the first feature, rounded: the test chooses the classes it sends
    return {"predictions": [int(row[0]) for row in data.tolist()], "echo": 1}
"""


def _samples(server: Server, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Samples of one metric: {label set: value}."""
    out = {}
    for line in server.get("/metrics").text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) + 1 :].rsplit("} ", 1)
            out[frozenset(re.findall(r'(\w+)="([^"]*)"', labels))] = float(value)
    return out


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


def test_classes_are_counted_per_version_with_a_bounded_number_of_series(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    model = write_model(tmp_path / "iris", CLASSES_SCORE)
    declaration = OutputDeclaration("class", "predictions", max_classes=3).to_json()
    server = start_server(model, prediction_metrics=declaration, environment="prod", track="canary", auth_enabled=False)
    rows = [[c, 1.0, 1.0, 1.0] for c in (0, 1, 1, 2, 2, 2, 7, 8, 9)]
    assert server.post({"data": rows}).status_code == 200
    assert server.post({"data": [[1.0, 0, 0, 0]]}).status_code == 200
    counts = _samples(server, "gitops_ml_predictions_total")
    identity = {"model": "iris", "version": "1.2.3", "environment": "prod", "track": "canary"}
    assert counts == {_labels(**identity, **{"class": c}): n for c, n in (("0", 1), ("1", 3), ("2", 3), (OTHER, 3))}
    # every other family carries the same identity, so one Prometheus tells stable and canary apart
    requests = _samples(server, "gitops_ml_requests_total")
    assert requests[_labels(**identity, route="score", status="200")] == 2


def test_scores_go_into_a_histogram(start_server: Callable[..., Server], tmp_path: Path) -> None:
    model = write_model(
        tmp_path / "iris", 'def init():\n    pass\n\ndef run(data):\n    return {"score": float(data[0][0])}\n'
    )
    server = start_server(
        model, prediction_metrics=OutputDeclaration("score", "score", buckets=(0.5, 1.0)).to_json(), auth_enabled=False
    )
    for value in (0.2, 0.7, 0.9, 3.0):
        assert server.post({"data": [[value, 0, 0, 0]]}).status_code == 200
    buckets = _samples(server, "gitops_ml_prediction_score_bucket")
    assert buckets == {
        _labels(le=le, model="iris", version="1.2.3"): n for le, n in (("0.5", 1), ("1.0", 3), ("+Inf", 4))
    }
    assert server.metric("gitops_ml_prediction_score_sum") == 4.8


def test_declared_classes_and_unreadable_answers() -> None:
    predictions = Predictions(OutputDeclaration("class", "label", classes=("cat", "dog")))
    for body in (
        b'{"label": "cat"}',
        b'{"label": ["dog", "cow", "cat"]}',
        b'{"other": 1}',
        b"[1, 2]",
        b'{"label": [[1, 2]]}',
        b"not json",
    ):
        predictions.observe(body)
    assert predictions.counts == {"cat": 2, "dog": 1, OTHER: 1}
    assert Predictions(OutputDeclaration("class", "label", classes=("cat",))).counts == {"cat": 0, OTHER: 0}, (
        "declared classes start at 0"
    )
    assert predictions.unreadable == 4


def test_one_and_one_point_zero_are_one_class() -> None:
    predictions = Predictions(OutputDeclaration("class", "p"))
    predictions.observe(b'{"p": [1, 1.0, true, "1"]}')
    assert predictions.counts == {"1": 3, "true": 1}


def test_stable_and_shadow_capture_the_same_requests() -> None:
    ids = [f"req-{n}" for n in range(2000)]
    chosen = [i for i in ids if sampled(i, 0.05)]
    assert chosen == [i for i in ids if sampled(i, 0.05)], "the same id is always decided alike"
    assert 50 <= len(chosen) <= 150
    assert all(sampled(i, 1.0) for i in ids) and not any(sampled(i, 0.0) for i in ids)


def test_a_candidate_marks_its_captures_with_its_track(start_server: Callable[..., Server], tmp_path: Path) -> None:
    model = write_model(tmp_path / "iris", CLASSES_SCORE)
    server = start_server(model, capture_enabled=True, track="shadow", auth_enabled=False)
    assert server.post({"data": [[1.0, 0, 0, 0]]}, headers={"X-Request-Id": "mirrored-1"}).status_code == 200
    assert server.stop() == 0
    records = [
        json.loads(line) for path in sorted(tmp_path.rglob("capture-*.jsonl")) for line in path.read_text().splitlines()
    ]
    assert [(r["request_id"], r["track"], r["version"]) for r in records] == [("mirrored-1", "shadow", "1.2.3")]

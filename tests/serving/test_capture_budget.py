"""Capture holds request bodies within a byte budget when its volume is slow or hung."""

from __future__ import annotations

import json
from pathlib import Path

from gitops_ml.serving.telemetry import Capture, Metrics


def test_records_beyond_the_byte_budget_are_dropped_and_counted(tmp_path: Path) -> None:
    metrics = Metrics("iris", "1.0.0")
    capture = Capture(
        str(tmp_path), "iris", "1.0.0", sampling=1.0, max_file_bytes=1 << 20, metrics=metrics, max_pending_bytes=1000
    )
    # the writer thread is not started: a hung volume, nothing drains
    for n in range(3):
        capture.offer({"request_id": str(n), "input": "x" * 390}, 400)
    assert metrics.capture_dropped == 1 and capture.pending_bytes == 800
    capture.start()
    capture.close()
    written = [json.loads(line) for path in sorted(tmp_path.rglob("*.jsonl")) for line in path.read_text().splitlines()]
    assert [r["request_id"] for r in written] == ["0", "1"]
    assert capture.pending_bytes == 0, "written records give their bytes back"

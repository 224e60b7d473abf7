"""`shadow report`: the stable version's and the shadow's captured answers, joined by request id.

End to end with real servers (a mirror sends each request, with its X-Request-Id, to both), then the
join itself on hand-written captures: scores, both layouts, cut lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import httpx
from rollout.analysis_repo import ROWS
from rollout.conftest import Analysis, Served, run

from gitops_ml.rollout.shadow import ShadowReport, compare_captures, to_markdown
from gitops_ml.types import OutputSpec, Version


def test_shadow_answers_are_joined_with_the_stable_ones(
    analysis: Analysis, serve: Callable[..., Served], tmp_path: Path
) -> None:
    stable = serve(analysis.stable_dir, "good")
    shadow = serve(analysis.repo / "models" / "iris", "good", track="shadow", extra_env={"IRIS_FAULT": "shifted"})
    canary = serve(analysis.repo / "models" / "iris", "good", track="canary")  # same version, its own requests
    for i in range(20):
        body = {"data": [ROWS[(i + k) % 3] for k in range(3)]}
        for server in (stable, shadow):  # what a RequestMirror does: the same request, the same id
            assert (
                httpx.post(
                    f"{server.url}/score", json=body, headers={"X-Request-Id": f"mirrored-{i}"}, timeout=30
                ).status_code
                == 200
            )
        assert (
            httpx.post(
                f"{canary.url}/score", json=body, headers={"X-Request-Id": f"canary-only-{i}"}, timeout=30
            ).status_code
            == 200
        )
    for server in (stable, shadow, canary):
        assert server.stop() == 0  # captures are flushed on shutdown
    capture = tmp_path / "capture"
    result = run(
        "shadow",
        "report",
        "iris",
        "--env",
        "good",
        "--capture",
        str(capture),
        "--repo",
        str(analysis.repo),
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["records"] == {"stable": 20, "candidate": 20, "joined": 20, "unreadableLines": 0}
    assert (report["compared"], report["agreed"]) == (60, 20)  # the shadow answers 0 for every row: one in three agrees
    assert report["confusion"] == [{"stable": s, "candidate": "0", "count": 20} for s in ("0", "1", "2")]
    assert report["latencyMs"]["stable"]["count"] == report["latencyMs"]["candidate"]["count"] == 20
    first = report["disagreements"][0]
    assert (
        first["requestId"].startswith("mirrored-")
        and first["input"]["data"]
        and first["candidate"] == {"predictions": [0, 0, 0]}
    )
    assert len(report["disagreements"]) == 5
    markdown = run("shadow", "report", "iris", "--env", "good", "--capture", str(capture), "--repo", str(analysis.repo))
    assert markdown.exit_code == 0
    assert "**Agreement: 33.33 %** of 60 predictions to 20 mirrored requests." in markdown.stdout
    assert "| stable \\ candidate | 0 |" in markdown.stdout and "| 2 | 20 |" in markdown.stdout
    assert "First 5 disagreement(s):" in markdown.stdout


def test_nothing_captured_is_said(analysis: Analysis, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run(
        "shadow", "report", "iris", "--env", "good", "--capture", str(tmp_path / "empty"), "--repo", str(analysis.repo)
    )
    assert result.exit_code == 2
    assert "no captures of iris@1.0.0 or of its shadow iris@1.1.0" in result.stderr


def _write(path: Path, records: list[dict[str, object]], tail: bytes = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records) + tail)


def test_scores_give_error_statistics_and_both_layouts_are_read(tmp_path: Path) -> None:
    def record(rid: str, version: str, score: float, track: str = "", status: int = 200) -> dict[str, object]:
        out = {
            "request_id": rid,
            "time": "2026-01-01T00:00:00Z",
            "version": version,
            "status": status,
            "latency_ms": 2.0,
            "input": {"x": rid},
            "output": {"score": score},
        }
        return {**out, "track": track} if track else out

    _write(
        tmp_path / "iris/1.0.0/2026-01-01/00/capture-a.jsonl",
        [record("a", "1.0.0", 0.5), record("b", "1.0.0", 0.2), record("c", "1.0.0", 0.9)],
    )
    # a shadow writing hive-style (an object store's layout), one line cut by a full disk
    _write(
        tmp_path / "model=iris/version=1.1.0/date=2026-01-01/hour=00/capture-b.jsonl",
        [
            record("a", "1.1.0", 0.5, "shadow"),
            record("b", "1.1.0", 0.6, "shadow"),
            record("c", "1.1.0", 0.0, "shadow", status=500),
        ],
        b'{"request_id": "d", "ti',
    )
    report = ShadowReport("iris", "prod", Version.parse("1.0.0"), Version.parse("1.1.0"), OutputSpec("score", "score"))
    compare_captures(report, tmp_path, limit=5)
    assert (report.joined, report.compared, report.agreed, report.candidate_errors, report.unreadable_lines) == (
        3,
        2,
        1,
        1,
        1,
    )
    errors = report.score_errors
    assert (
        errors is not None
        and errors.count == 2
        and abs(errors.mean - 0.2) < 1e-9
        and abs(errors.max_absolute - 0.4) < 1e-9
    )
    assert [d.request_id for d in report.disagreements] == ["b", "c"]
    text = to_markdown(report)
    assert "| 2 | 0.2 | 0.2 | 0.282843 | 0.4 |" in text
    assert "1 capture line(s) could not be read and were skipped." in text

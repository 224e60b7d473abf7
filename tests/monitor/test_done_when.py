"""Issue 13's "done when": the example iris model served by `gitops-ml serve` with capture to a real S3
store (SeaweedFS), fed an undrifted and then a drifted batch; `gitops-ml monitor`, reading the sink
the deployment file names, passes the first and fails the second, naming the drifted feature."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.monitor.support import IRIS_VERSION, copy_example, invoke, iris_rows
from tests.s3store import S3Store
from tests.serving.conftest import START_DEADLINE, Server, free_port


def serve_and_feed(repo: Path, tmp_path: Path, env: dict[str, str], rows: list[list[list[float]]]) -> None:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_ML_", "AWS_"))}
    clean.update(HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1", **env)
    out, err = tmp_path / f"serve-{port}.out", tmp_path / f"serve-{port}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gitops_ml",
                "serve",
                str(repo / "models/iris"),
                "--env",
                "staging",
                "--port",
                str(port),
                "--capture-dir",
                str(tmp_path / f"capture-{port}"),
            ],
            env=clean,
            stdout=stdout,
            stderr=stderr,
        )
    server = Server(process, f"http://127.0.0.1:{port}", out, err, tmp_path, headers={})
    try:
        server.wait_until(lambda: server.get("/readyz").status_code == 200, "readiness", START_DEADLINE)
        with httpx.Client(timeout=30) as client:
            for chunk in rows:
                answer = client.post(server.url + "/score", json={"data": chunk})
                assert answer.status_code == 200, answer.text
    finally:
        assert server.stop() == 0, server.log()  # SIGTERM: what is left is uploaded before the exit


def point_sink_at(repo: Path, uri: str) -> None:
    path = repo / "deployments/staging/iris.yaml"
    text = path.read_text()
    start = text.index("    sampling: 1.0\n") + len("    sampling: 1.0\n")
    end = text.index("exposure:")
    path.write_text(text[:start] + f"    sink:\n      uri: {uri}\n" + text[end:])


def requests_of(rows: list[list[float]], per_request: int = 5) -> list[list[list[float]]]:
    return [rows[i : i + per_request] for i in range(0, len(rows), per_request)]


def test_serve_to_s3_then_monitor_passes_undrifted_and_fails_drifted(s3_store: S3Store, tmp_path: Path) -> None:
    repo = copy_example(tmp_path / "repo")
    bucket = s3_store.new_bucket()
    env = s3_store.env()

    point_sink_at(repo, f"s3://{bucket}/calm")
    serve_and_feed(repo, tmp_path, env, requests_of(iris_rows(1000, seed=11).round(1).tolist()))
    assert s3_store.keys(bucket, f"calm/model=iris/version={IRIS_VERSION}/date=")
    calm = invoke("monitor", "iris", "--env", "staging", "--repo", str(repo), "--format", "json", env=env)
    assert calm.code == 0, calm.output
    report = json.loads(calm.stdout)
    assert report["status"] == "ok" and report["records"]["scored"] == 200 and report["source"] == f"s3://{bucket}/calm"
    assert [f["name"] for f in report["features"] if f["drifted"]] == []

    point_sink_at(repo, f"s3://{bucket}/shifted")
    shifted_rows = iris_rows(1000, seed=12, shift=(0, 0, 2.0, 0)).round(1).tolist()  # petal length 2 cm longer
    serve_and_feed(repo, tmp_path, env, requests_of(shifted_rows))
    drifted = invoke("monitor", "iris", "--env", "staging", "--repo", str(repo), env=env)
    assert drifted.code == 1, drifted.output
    assert "threshold crossed: 1 feature(s) drifted: petal_length (PSI" in drifted.stdout
    markdown = invoke("monitor", "iris", "--env", "staging", "--repo", str(repo), "--format", "markdown", env=env)
    assert "| **drifted** | `petal_length` | numeric |" in markdown.stdout
    for name in ("sepal_length", "sepal_width", "petal_width"):
        assert f"| ok | `{name}` | numeric |" in markdown.stdout

"""Capture to the team's object store: a real `gitops-ml serve` uploads each closed capture file to a
real S3 store (SeaweedFS on 127.0.0.1) under hive-style keys, counts it in /metrics, uploads what is
left on SIGTERM, keeps files when the store cannot be reached, and uploads them at the next start."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import model_version

from tests.s3store import S3Store, free_ports
from tests.serving.conftest import EXAMPLES, START_DEADLINE, Server, free_port, serve_cli

BODY = (EXAMPLES / "iris" / "sample.json").read_bytes().strip()
KEY = re.compile(
    r"^runs/model=iris/version="
    + re.escape(model_version("iris"))
    + r"/date=\d{4}-\d{2}-\d{2}/hour=\d{2}/capture-\d{8}T\d{6}-[^/]+-\d+-\d{4}\.jsonl\.gz$"
)


def serve(
    tmp_path: Path, capture: Path, sink: str, env: dict[str, str], *, max_file_bytes: int = 1, flush_seconds: float = 3
) -> Server:
    """`gitops-ml serve` of the example iris with staging's capture (sampling 1), uploading to `sink`.
    A max file size of 1 byte closes every file after one record, so each record is one upload."""
    server = serve_cli(
        tmp_path,
        EXAMPLES / "iris",
        "--env",
        "staging",
        "--capture-dir",
        str(capture),
        env={
            "HOME": str(tmp_path / "home"),
            "GITOPS_ML_CAPTURE_SINK_URI": sink,
            "GITOPS_ML_CAPTURE_MAX_FILE_BYTES": str(max_file_bytes),
            "GITOPS_ML_CAPTURE_SINK_FLUSH_SECONDS": str(flush_seconds),
            **env,
        },
        strip=("GITOPS_ML_", "AWS_"),
    )
    server.wait_until(lambda: server.get("/readyz").status_code == 200, "readiness", START_DEADLINE)
    return server


def score(server: Server, n: int) -> None:
    for _ in range(n):
        answer = server.post(content=BODY)
        assert answer.status_code == 200, answer.text


def local_files(capture: Path) -> list[Path]:
    return sorted(capture.rglob("*.jsonl"))


def records_in(store: S3Store, bucket: str, keys: list[str]) -> list[dict[str, object]]:
    return [json.loads(line) for key in keys for line in gzip.decompress(store.get(bucket, key)).splitlines()]


def test_closed_files_are_uploaded_hive_style_and_counted(s3_store: S3Store, tmp_path: Path) -> None:
    bucket = s3_store.new_bucket()
    capture = tmp_path / "capture"
    server = serve(tmp_path, capture, f"s3://{bucket}/runs", s3_store.env())
    try:
        score(server, 5)  # five files: four closed by the next record, the fifth still open
        server.wait_until(lambda: server.metric("gitops_ml_capture_uploaded_records_total") == 4, "four uploads")
        assert server.metric("gitops_ml_capture_pending_records") == 1
        # the upload counters carry the server's identity, as every family does (alerts select by it)
        assert server.metric('gitops_ml_capture_uploaded_records_total{model="iris",environment="staging"}') == 4
        assert server.metric("gitops_ml_capture_upload_failures_total") == 0
        assert server.metric("gitops_ml_capture_uploaded_bytes_total") > 0
        keys = s3_store.keys(bucket)
        assert len(keys) == 4 and all(KEY.match(k) for k in keys), keys
        records = records_in(s3_store, bucket, keys)
        assert {r["status"] for r in records} == {200} and records[0]["input"] == json.loads(BODY)
        assert len(local_files(capture)) == 1, "uploaded files leave the pod's disk; the open one stays"
    finally:
        assert server.stop() == 0, server.log()
    # SIGTERM: the last file is closed and uploaded before the process exits
    assert len(s3_store.keys(bucket)) == 5 and local_files(capture) == []
    assert "capture to" in server.log() and f"s3://{bucket}/runs" in server.log()


def test_sigterm_uploads_every_pending_file_before_exit(s3_store: S3Store, tmp_path: Path) -> None:
    bucket = s3_store.new_bucket()
    capture = tmp_path / "capture"
    server = serve(tmp_path, capture, f"s3://{bucket}/runs", s3_store.env(), max_file_bytes=64 * 1024 * 1024)
    try:
        score(server, 30)  # one file, open until shutdown: nothing uploaded yet
        assert server.metric("gitops_ml_capture_pending_records") == 30
        assert s3_store.keys(bucket) == []
    finally:
        assert server.stop() == 0, server.log()
    keys = s3_store.keys(bucket)
    assert len(keys) == 1 and KEY.match(keys[0])
    assert len(records_in(s3_store, bucket, keys)) == 30 and local_files(capture) == []


def test_unreachable_store_never_fails_scoring_and_files_wait_for_the_next_start(
    s3_store: S3Store, tmp_path: Path
) -> None:
    bucket = s3_store.new_bucket()
    capture = tmp_path / "capture"
    (nobody,) = free_ports(1)
    unreachable = {**s3_store.env(), "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{nobody}"}
    server = serve(tmp_path, capture, f"s3://{bucket}/runs", unreachable)
    try:
        score(server, 4)
        server.wait_until(lambda: server.metric("gitops_ml_capture_upload_failures_total") >= 1, "a failed upload")
        assert server.metric("gitops_ml_capture_uploaded_records_total") == 0
        assert server.metric("gitops_ml_capture_pending_records") == 4
        assert server.metric('gitops_ml_requests_total{route="score",status="200"}') == 4
    finally:
        assert server.stop() == 0, server.log()
    log = server.stderr.read_text()
    assert "capture upload failed" in log and "cannot reach the object store" in log
    assert log.count("capture upload failed") == 1, "one log line per streak of failures"
    assert "capture files left on disk for the next start" in log
    assert len(local_files(capture)) == 4 and s3_store.keys(bucket) == []

    # the next start (a restarted container keeps its emptyDir) uploads them
    server = serve(tmp_path, capture, f"s3://{bucket}/runs", s3_store.env())
    try:
        server.wait_until(lambda: server.metric("gitops_ml_capture_uploaded_records_total") == 4, "leftover uploads")
    finally:
        assert server.stop() == 0, server.log()
    assert len(s3_store.keys(bucket)) == 4 and local_files(capture) == []


def test_refused_credentials_are_logged_and_files_kept(s3_store: S3Store, tmp_path: Path) -> None:
    bucket = s3_store.new_bucket()
    capture = tmp_path / "capture"
    wrong = {**s3_store.env(), "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    server = serve(tmp_path, capture, f"s3://{bucket}/runs", wrong)
    try:
        score(server, 2)
        server.wait_until(lambda: server.metric("gitops_ml_capture_upload_failures_total") >= 1, "a refused upload")
    finally:
        assert server.stop() == 0, server.log()
    assert "S3 refused: SignatureDoesNotMatch" in server.stderr.read_text()
    assert len(local_files(capture)) == 2 and s3_store.keys(bucket) == []


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("gs://bucket/prefix", "unknown scheme gs://"),
        ("bucket/prefix", "is not a URI"),
        ("s3://Bad_Bucket/x", "is not a bucket name"),
    ],
)
def test_a_bad_sink_uri_is_refused_at_start(tmp_path: Path, uri: str, message: str) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_ML_") or k == "GITOPS_ML_ENV_MANAGER"}
    clean.update(HOME=str(tmp_path / "home"), GITOPS_ML_CAPTURE_SINK_URI=uri)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gitops_ml",
            "serve",
            str(EXAMPLES / "iris"),
            "--port",
            str(free_port()),
            "--env",
            "staging",
        ],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr

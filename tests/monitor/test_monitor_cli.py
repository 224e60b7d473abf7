"""`gitops-ml monitor` on capture directories laid out as the server writes them: drift named or
not, "no data" apart from "no drift" (exit 7), and bad input — truncated files, records of other
models, versions and formats, a missing or mismatched profile, an unknown scheme — told clearly."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.monitor.support import IRIS_VERSION, NOW, batch, copy_example, invoke, iris_rows, record, write_capture

EXIT_NO_DATA = 7


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "repo")


def monitor(repo: Path, capture: Path | str, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return invoke("monitor", "iris", "--env", "staging", "--repo", str(repo), "--capture", str(capture), *args, env=env)


def test_an_undrifted_window_passes_and_a_drifted_one_names_its_features(repo: Path, tmp_path: Path) -> None:
    calm, shifted = tmp_path / "calm", tmp_path / "shifted"
    write_capture(calm, batch(iris_rows(1000, seed=1)), gz=True)
    write_capture(shifted, batch(iris_rows(1000, seed=2, shift=(0, 0, 2.5, 1.0))))
    ok = monitor(repo, calm)
    assert ok.code == 0, ok.output
    assert "ok: no drift in 4 feature(s) and 1 prediction(s)" in ok.stdout

    drifted = monitor(repo, shifted, "--format", "json")
    assert drifted.code == 1, drifted.output
    report = json.loads(drifted.stdout)
    assert report["status"] == "threshold crossed" and report["exitCode"] == 1
    assert sorted(f["name"] for f in report["features"] if f["drifted"]) == ["petal_length", "petal_width"]
    assert not any(f["drifted"] for f in report["features"] if f["name"].startswith("sepal"))
    assert report["records"] == report["records"] | {"total": 200, "scored": 200, "refused": 0, "errors": 0}
    assert "petal_length (PSI" in report["headline"] and "petal_width (PSI" in report["headline"]

    text = monitor(repo, shifted)
    assert text.code == 1 and re.search(r"petal_length .*drifted", text.stdout), text.stdout
    markdown = monitor(repo, shifted, "--format", "markdown")
    assert markdown.code == 1 and "| **drifted** | `petal_length` | numeric |" in markdown.stdout
    assert markdown.stdout.startswith(f"### gitops-ml monitor: iris {IRIS_VERSION} in staging — threshold crossed")


def test_no_data_is_not_no_drift(repo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = monitor(repo, empty, "--format", "json")
    assert result.code == EXIT_NO_DATA, result.output
    assert json.loads(result.stdout)["status"] == "no data"

    few = tmp_path / "few"
    write_capture(few, batch(iris_rows(50)))  # 10 requests: fewer than minRecords (100)
    result = monitor(repo, few)
    assert (
        result.code == EXIT_NO_DATA
        and f"no data: 10 scored record(s) of iris {IRIS_VERSION} in the window, 100 needed" in result.stdout
    )

    old = tmp_path / "old"  # plenty of records, but two days ago: outside the default window of 24 hours
    two_days = NOW - timedelta(days=2)
    write_capture(old, batch(iris_rows(1000), when=two_days), when=two_days)
    result = monitor(repo, old)
    assert result.code == EXIT_NO_DATA
    assert monitor(repo, old, "--since", "3d").code == 0
    assert monitor(repo, old, "--since", (two_days - timedelta(hours=1)).isoformat(), "--until", "1d").code == 0


def test_quality_checks_cross_on_refusals_errors_and_latency(repo: Path, tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    records = batch(iris_rows(1000))
    records += [record([[1, 2, 3, 4]], status=422)] * 30 + [record([[1, 2, 3, 4]], status=500)] * 5
    records += [record([[5.1, 3.5, 1.4, 0.2]], latency_ms=9000.0)] * 10
    write_capture(capture, records)
    result = monitor(repo, capture, "--format", "json")
    assert result.code == 1, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["refused"]["crossed"] and "of requests refused by the input schema" in checks["refused"]["summary"]
    assert checks["errors"]["crossed"] and checks["latency"]["crossed"] and not checks["drift"]["crossed"]


def test_truncated_files_unreadable_lines_and_foreign_records_are_skipped_and_said(repo: Path, tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    good = batch(iris_rows(1000))
    whole = write_capture(capture, good[:100], name="a.jsonl")
    whole.write_bytes(whole.read_bytes() + b'{"format": 1, "time": "20')  # a writer killed mid-line
    cut = write_capture(capture, good[100:], name="b.jsonl", gz=True)
    cut.write_bytes(cut.read_bytes()[: len(cut.read_bytes()) * 2 // 3])  # a copy cut short
    write_capture(capture, [record([[1, 2, 3, 4]], model="digits")], name="c.jsonl")
    write_capture(capture, [record([[1, 2, 3, 4]], version="0.9.0")] * 3, name="d.jsonl", version="0.9.0")
    write_capture(capture, [record([[1, 2, 3, 4]], fmt=99)] * 2, name="e.jsonl")
    (capture / "notes.txt").write_text("not a capture file")
    result = monitor(repo, capture, "--format", "json")
    assert result.code == 0, result.output
    report = json.loads(result.stdout)
    assert 100 < report["records"]["scored"] < 200
    notes = "\n".join(report["notes"])
    assert "1 line(s) of the capture files were not readable JSON records" in notes
    assert re.search(r"b\.jsonl\.gz ends early \(a truncated gzip file\)", notes)
    assert "1 record(s) of other models were skipped" in notes
    assert "3 record(s) of version 0.9.0 were skipped" in notes
    assert "2 record(s) written by a newer gitops-ml were skipped" in notes
    assert "note: 3 record(s) of version 0.9.0" in monitor(repo, capture).stderr


def test_records_of_an_older_gitops_ml_are_read(repo: Path, tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    write_capture(capture, batch(iris_rows(1000), fmt=None), flat=True)  # model/version/date/hour, no `format`
    result = monitor(repo, capture, "--format", "json")
    assert result.code == 0, result.output
    report = json.loads(result.stdout)
    assert report["records"]["scored"] == 200
    assert any("did not capture refusals by the input schema" in n for n in report["notes"])


def test_a_missing_or_mismatched_profile_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    capture = tmp_path / "capture"
    write_capture(capture, batch(iris_rows(1000)))
    profile = repo / "models/iris/reference.json"
    original = profile.read_text()

    doc = json.loads(original)
    doc["features"][0]["path"] = "measurements[*][0]"
    profile.write_text(json.dumps(doc))
    result = monitor(repo, capture)
    assert (
        result.code == 1
        and "the reference profile does not match the input schema: feature 'sepal_length' reads input 'measurements'"
        in result.stderr
    )

    profile.write_text(original.replace('"kind": "Profile"', '"kind": "Model"'))
    result = monitor(repo, capture)
    assert result.code == 1 and re.search(
        r"models/iris/reference\.json:3:\d+: not a reference profile: kind", result.stderr
    ), result.stderr

    profile.unlink()
    result = monitor(repo, capture)
    assert result.code == 1, result.output
    assert re.search(
        r"error: models/iris/model\.yaml:\d+:\d+: reference profile models/iris/reference\.json does not exist",
        result.stderr,
    )

    model = repo / "models/iris/model.yaml"
    model.write_text(model.read_text().replace("reference: reference.json\n", ""))
    result = monitor(repo, capture)
    assert (
        result.code == 2
        and f"iris {IRIS_VERSION} has no reference profile" in result.stderr
        and "gitops-ml profile DATA --model iris" in result.stderr
    )


def test_bad_command_lines(repo: Path, tmp_path: Path) -> None:
    cases = [
        (("--capture", "gs://bucket/captures"), 2, "unknown scheme gs://"),
        (("--capture", str(tmp_path / "nowhere")), 2, "capture directory"),
        (("--since", "yesterday"), 2, "'yesterday' is neither a duration"),
        (("--since", "2026-12-03", "--until", "2026-12-01", "--capture", str(tmp_path)), 2, "is not before --until"),
    ]
    for args, code, message in cases:
        result = invoke("monitor", "iris", "--env", "staging", "--repo", str(repo), *args)
        assert result.code == code and message in result.stderr, (args, result.output)
    result = invoke("monitor", "iris", "--env", "qa", "--repo", str(repo), "--capture", str(tmp_path))
    assert result.code == 2 and "not deployed in environment 'qa'" in result.stderr and "prod, staging" in result.stderr
    result = invoke("monitor", "iris", "--env", "staging", "--repo", str(repo))
    assert result.code == 2 and "names no telemetry.capture.sink.uri" in result.stderr


def test_missing_credentials_for_a_store_are_named(repo: Path, s3_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bucket = s3_store.new_bucket()
    env = {
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_ENDPOINT_URL_S3": s3_store.endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    result = monitor(repo, f"s3://{bucket}/captures", env=env)
    assert result.code == 3 and "no S3 credentials" in result.stderr, result.output
    env.update(AWS_ACCESS_KEY_ID="gitops-ml-test", AWS_SECRET_ACCESS_KEY="wrong")
    result = monitor(repo, f"s3://{bucket}/captures", env=env)
    assert result.code == 3 and "S3 refused the credentials (SignatureDoesNotMatch)" in result.stderr, result.output


def test_without_the_monitor_extra_the_cli_says_what_to_install(repo: Path, tmp_path: Path) -> None:
    script = "import sys; sys.modules['duckdb'] = None; from gitops_ml.cli.main import main; main()"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            "monitor",
            "iris",
            "--env",
            "staging",
            "--repo",
            str(repo),
            "--capture",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr
    assert (
        "monitor needs duckdb, not installed here" in done.stderr and "pip install 'gitops-ml[monitor]'" in done.stderr
    )


def test_gzip_and_plain_files_read_alike(repo: Path, tmp_path: Path) -> None:
    records = batch(iris_rows(1000, seed=5))
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    write_capture(plain, records)
    path = write_capture(packed, records, gz=True)
    assert gzip.decompress(path.read_bytes()).count(b"\n") == 200
    a, b = (json.loads(monitor(repo, d, "--format", "json").stdout) for d in (plain, packed))
    assert a["features"] == b["features"] and a["predictions"] == b["predictions"]

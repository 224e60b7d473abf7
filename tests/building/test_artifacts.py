"""Artifact fetching over HTTP from a local server: verified, cached by digest, nothing partial left."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from gitops_ml.adapters.artifacts import ArtifactRequest, fetch_artifact
from gitops_ml.errors import ArtifactError, Location
from gitops_ml.types import Artifact

PAYLOAD = b"model weights \x00\x01" * 1000


def _request(uri: str, sha256: str) -> ArtifactRequest:
    return ArtifactRequest("iris", Artifact(uri, sha256, "model.joblib"), Location("models/iris/model.yaml"), {})


def _cache_files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


def test_http_artifact_is_verified_and_cached(http_dir: tuple[Path, str], tmp_path: Path) -> None:
    root, base = http_dir
    (root / "model.joblib").write_bytes(PAYLOAD)
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    cache = tmp_path / "cache"
    path = fetch_artifact(_request(f"{base}/model.joblib", digest), cache=cache)
    assert path.read_bytes() == PAYLOAD
    assert path.name == digest
    (root / "model.joblib").unlink()  # a cached digest is served without asking the server again
    assert fetch_artifact(_request(f"{base}/model.joblib", digest), cache=cache).read_bytes() == PAYLOAD


def test_http_404_names_model_and_uri(http_dir: tuple[Path, str], tmp_path: Path) -> None:
    _, base = http_dir
    cache = tmp_path / "cache"
    with pytest.raises(ArtifactError) as info:
        fetch_artifact(_request(f"{base}/missing.joblib", "0" * 64), cache=cache)
    message = str(info.value)
    assert "models/iris/model.yaml" in message and "model iris" in message
    assert f"{base}/missing.joblib" in message and "404" in message
    assert info.value.exit_code == 6
    assert _cache_files(cache) == []


def test_http_sha_mismatch_leaves_nothing(http_dir: tuple[Path, str], tmp_path: Path) -> None:
    root, base = http_dir
    (root / "model.joblib").write_bytes(PAYLOAD)
    cache = tmp_path / "cache"
    wrong = hashlib.sha256(b"other").hexdigest()
    with pytest.raises(ArtifactError) as info:
        fetch_artifact(_request(f"{base}/model.joblib", wrong), cache=cache)
    assert "sha256 mismatch" in str(info.value) and hashlib.sha256(PAYLOAD).hexdigest() in str(info.value)
    assert _cache_files(cache) == []


def test_unreachable_host_is_an_artifact_error(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on: bound, then closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ArtifactError) as info:
        fetch_artifact(_request(f"http://127.0.0.1:{port}/model.joblib", "0" * 64), cache=tmp_path / "cache")
    assert "cannot download" in str(info.value)


def test_repository_path_artifact_checks_its_digest(tmp_path: Path) -> None:
    request = ArtifactRequest(
        "iris",
        Artifact("model.joblib", "0" * 64, "model.joblib"),
        Location("models/iris/model.yaml"),
        {"model.joblib": PAYLOAD},
    )
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        fetch_artifact(request, cache=tmp_path / "cache")


def test_unsupported_scheme(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="unsupported URI scheme 'ftp'"):
        fetch_artifact(_request("ftp://example.com/m.joblib", "0" * 64), cache=tmp_path / "cache")

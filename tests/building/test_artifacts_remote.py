"""s3:// and oci:// artifacts against real local servers.

s3://: moto's S3 server on 127.0.0.1 (boto3 reaches it through AWS_ENDPOINT_URL_S3, the same variable a
MinIO or Ceph user sets). oci://: the distribution registry that `.ci/setup-docker.sh` starts, with the
artifact pushed by ORAS exactly as a training job would push it. Both fetch, verify the sha256, cache by
digest and leave nothing behind on failure.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from support import require

from gitops_ml.adapters.artifacts import ArtifactRequest, fetch_artifact
from gitops_ml.errors import ArtifactError, Location
from gitops_ml.types import Artifact

REGISTRY = os.environ.get("GITOPS_ML_TEST_REGISTRY", "127.0.0.1:5000")


def _request(uri: str, sha256: str) -> ArtifactRequest:
    return ArtifactRequest("iris", Artifact(uri, sha256, "model.joblib"), Location("models/iris/model.yaml"), {})


def _files(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto import server as moto_server  # noqa: PLC0415 - a dev dependency: missing, the tests fail

    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> object:
    """A boto3 client on the local S3, with the environment fetch_artifact will read; a bucket `models`."""
    import boto3  # noqa: PLC0415

    for name, value in {
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3")
    client.create_bucket(Bucket="models")
    return client


def test_s3_artifact_is_fetched_verified_and_cached(s3: object, tmp_path: Path) -> None:
    payload = secrets.token_bytes(300_000)
    s3.put_object(Bucket="models", Key="iris/1.2.0/model.joblib", Body=payload)  # type: ignore[attr-defined]
    digest = hashlib.sha256(payload).hexdigest()
    cache = tmp_path / "cache"
    path = fetch_artifact(_request("s3://models/iris/1.2.0/model.joblib", digest), cache=cache)
    assert path.read_bytes() == payload and path.name == digest
    s3.delete_object(Bucket="models", Key="iris/1.2.0/model.joblib")  # type: ignore[attr-defined]
    assert fetch_artifact(_request("s3://models/iris/1.2.0/model.joblib", digest), cache=cache).read_bytes() == payload


def test_s3_missing_object_names_model_and_uri(s3: object, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(ArtifactError) as info:
        fetch_artifact(_request("s3://models/iris/9.9.9/model.joblib", "0" * 64), cache=cache)
    message = str(info.value)
    assert "model iris" in message and "s3://models/iris/9.9.9/model.joblib" in message
    assert "no such object" in message
    assert _files(cache) == []


def test_s3_missing_bucket_and_bad_uri(s3: object, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no such bucket"):
        fetch_artifact(_request("s3://no-such-bucket/model.joblib", "0" * 64), cache=tmp_path / "cache")
    with pytest.raises(ArtifactError, match="s3://BUCKET/KEY"):
        fetch_artifact(_request("s3://models", "0" * 64), cache=tmp_path / "cache")


def test_s3_sha_mismatch_leaves_nothing(s3: object, tmp_path: Path) -> None:
    s3.put_object(Bucket="models", Key="iris/model.joblib", Body=b"weights")  # type: ignore[attr-defined]
    cache = tmp_path / "cache"
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        fetch_artifact(_request("s3://models/iris/model.joblib", hashlib.sha256(b"other").hexdigest()), cache=cache)
    assert _files(cache) == []


def _registry_up() -> bool:
    try:
        return httpx.get(f"http://{REGISTRY}/v2/", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def registry() -> str:
    require(_registry_up(), f"no registry at {REGISTRY} (run `bash .ci/setup-docker.sh`)")
    return REGISTRY


def _oras_push(registry: str, target: str, file: Path) -> None:
    import oras.client  # noqa: PLC0415

    client = oras.client.OrasClient(hostname=registry, insecure=True)
    cwd = Path.cwd()
    os.chdir(file.parent)  # ORAS records the path as given; push by base name, as `oras push` users do
    try:
        client.push(target=f"{registry}/{target}", files=[file.name], quiet=True)
    finally:
        os.chdir(cwd)


def test_oci_artifact_pushed_with_oras_is_fetched_and_verified(registry: str, tmp_path: Path) -> None:
    payload = secrets.token_bytes(200_000)
    source = tmp_path / "push" / "model.joblib"
    source.parent.mkdir()
    source.write_bytes(payload)
    target = f"artifacts-{secrets.token_hex(4)}/iris:1.2.0"
    _oras_push(registry, target, source)
    digest = hashlib.sha256(payload).hexdigest()
    cache = tmp_path / "cache"
    path = fetch_artifact(_request(f"oci://{registry}/{target}", digest), cache=cache)
    assert path.read_bytes() == payload and path.name == digest
    assert [p.name for p in _files(cache)] == [digest], "ORAS's download directory is not left in the cache"

    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        fetch_artifact(
            _request(f"oci://{registry}/{target}", hashlib.sha256(b"x").hexdigest()), cache=tmp_path / "other"
        )
    assert _files(tmp_path / "other") == []


def test_oci_missing_tag_names_model_and_uri(registry: str, tmp_path: Path) -> None:
    uri = f"oci://{registry}/artifacts-{secrets.token_hex(4)}/iris:9.9.9"
    with pytest.raises(ArtifactError) as info:
        fetch_artifact(_request(uri, "0" * 64), cache=tmp_path / "cache")
    message = str(info.value)
    assert "model iris" in message and uri in message and "cannot pull" in message
    assert _files(tmp_path / "cache") == []

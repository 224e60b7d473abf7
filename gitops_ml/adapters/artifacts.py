"""Fetch model artifacts by URI (repository path, https://, s3://, oci://), verify sha256, cache by digest.

The only importer of boto3 and oras; their errors, and httpx's, become ArtifactError naming the model
and the URI. A file enters the cache only after its digest matched, by an atomic rename, so a failed
or interrupted fetch leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import httpx

from gitops_ml.errors import ArtifactError, ConfigError, Location
from gitops_ml.types import Artifact

Progress = Callable[[str], None]

_CHUNK = 1 << 20


def cache_root() -> Path:
    """~/.cache/gitops-ml (XDG_CACHE_HOME honoured; GITOPS_ML_CACHE_DIR overrides)."""
    explicit = os.environ.get("GITOPS_ML_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "gitops-ml"


@dataclass(frozen=True)
class ArtifactRequest:
    """What to fetch, and for whom: `model` and `where` make error messages point at model.yaml."""

    model: str
    artifact: Artifact
    where: Location
    repo_files: Mapping[str, bytes]  # the model directory's files, for `path` URIs


def fetch_artifact(request: ArtifactRequest, *, cache: Path | None = None, progress: Progress | None = None) -> Path:
    """A verified local copy of the artifact (a file named by its sha256 in the cache)."""
    expected = request.artifact.sha256.lower()
    store = (cache or cache_root()) / "artifacts" / "sha256"
    target = store / expected
    if request.artifact.scheme == "path":
        return _from_repository(request, store, target)
    if target.is_file():
        return target
    fetchers = {"https": _fetch_http, "http": _fetch_http, "s3": _fetch_s3, "oci": _fetch_oci}
    fetch = fetchers.get(request.artifact.scheme)
    if fetch is None:
        raise _error(request, f"unsupported URI scheme {request.artifact.scheme!r} (use a path, https://, s3:// or oci://)")
    store.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store, prefix=".fetch-") as tmp:
        part = Path(tmp) / "artifact"
        if progress:
            progress(f"fetching {request.artifact.uri}")
        fetch(request, part)
        _verify(request, part)
        os.replace(part, target)
    return target


def _from_repository(request: ArtifactRequest, store: Path, target: Path) -> Path:
    rel = posixpath.normpath(request.artifact.uri)
    data = request.repo_files.get(rel)
    if data is None:
        raise _error(request, "the artifact file is not in the model directory")
    digest = hashlib.sha256(data).hexdigest()
    if digest != request.artifact.sha256.lower():
        raise _error(request, f"sha256 mismatch: the file has {digest}, model.yaml says {request.artifact.sha256}")
    if not target.is_file():
        store.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=store, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return target


def _verify(request: ArtifactRequest, part: Path) -> None:
    h = hashlib.sha256()
    with open(part, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    if h.hexdigest() != request.artifact.sha256.lower():
        raise _error(
            request,
            f"sha256 mismatch: downloaded {part.stat().st_size} bytes with sha256 {h.hexdigest()}, "
            f"model.yaml says {request.artifact.sha256}",
            hint="the artifact changed after model.yaml was written, or model.yaml names the wrong file",
        )


def _error(request: ArtifactRequest, message: str, *, hint: str = "") -> ArtifactError:
    return ArtifactError(f"model {request.model}: artifact {request.artifact.uri}: {message}", location=request.where, hint=hint)


def _fetch_http(request: ArtifactRequest, part: Path) -> None:
    # trust_env keeps HTTPS_PROXY and SSL_CERT_FILE working for users behind a private-CA proxy
    try:
        with httpx.stream("GET", request.artifact.uri, follow_redirects=True, timeout=httpx.Timeout(30.0)) as response:
            if response.status_code != 200:
                raise _error(request, f"HTTP {response.status_code} {response.reason_phrase}")
            with open(part, "wb") as fh:
                for chunk in response.iter_bytes(_CHUNK):
                    fh.write(chunk)
    except httpx.HTTPError as exc:
        raise _error(request, f"cannot download: {exc or type(exc).__name__}") from exc


def _fetch_s3(request: ArtifactRequest, part: Path) -> None:
    """s3://bucket/key with boto3's parallel ranged download; AWS_ENDPOINT_URL_S3 points it at MinIO or Ceph."""
    try:
        import boto3  # noqa: PLC0415 - optional extra
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigError("s3:// artifacts need boto3", hint="pip install 'gitops-ml[s3]'") from exc
    bucket, _, key = request.artifact.uri[len("s3://"):].partition("/")
    if not bucket or not key:
        raise _error(request, "an S3 URI names an object: s3://BUCKET/KEY")
    client = boto3.client("s3")
    try:
        with open(part, "wb") as fh:
            client.download_fileobj(bucket, key, fh)
    except ClientError as exc:
        raise _s3_refusal(request, client, bucket, exc) from exc
    except BotoCoreError as exc:
        raise _error(request, f"cannot download from S3: {exc}", hint="check AWS credentials, AWS_REGION and AWS_ENDPOINT_URL_S3") from exc


def _s3_refusal(request: ArtifactRequest, client: Any, bucket: str, exc: Exception) -> ArtifactError:
    """Name what S3 refused: the object's HEAD answers a bare 404 or 403, so ask about the bucket too."""
    from botocore.exceptions import ClientError  # noqa: PLC0415

    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    if code in {"404", "NoSuchKey", "NoSuchBucket"}:
        try:
            client.head_bucket(Bucket=bucket)
        except ClientError:
            return _error(request, f"no such bucket {bucket!r}")
        return _error(request, "no such object in the bucket")
    if code in {"403", "AccessDenied"}:
        return _error(request, "S3 denied access (403)", hint="check the credentials' read permission on the bucket")
    return _error(request, f"S3 refused: {exc}")


def _fetch_oci(request: ArtifactRequest, part: Path) -> None:
    """oci://registry/repo:tag — an ORAS artifact whose single file is the model artifact."""
    try:
        import oras.client  # noqa: PLC0415 - optional extra
    except ImportError as exc:
        raise ConfigError("oci:// artifacts need ORAS", hint="pip install 'gitops-ml[oci]'") from exc
    target = request.artifact.uri[len("oci://"):]
    host = target.split("/", 1)[0]
    insecure = host.startswith(("127.", "localhost"))
    with tempfile.TemporaryDirectory(dir=part.parent, prefix="oras-") as out:
        try:
            files = oras.client.OrasClient(hostname=host, insecure=insecure).pull(target=target, outdir=out)
        except Exception as exc:  # noqa: BLE001 - oras raises plain exceptions and requests errors
            raise _error(request, f"cannot pull with ORAS: {exc}") from exc
        paths = [Path(f) for f in files or [] if Path(f).is_file()]
        if len(paths) != 1:
            raise _error(request, f"expected one file in the OCI artifact, found {len(paths)}")
        shutil.move(str(paths[0]), part)

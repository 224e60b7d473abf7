"""Read capture objects from the team's object store (S3 API, through boto3) into a local cache.

The only importer of boto3 on the command-line side. Objects are immutable once the server wrote
them, so a cached copy with the same size is reused; downloads run in parallel threads. boto3's
errors become ConfigError (credentials, an unknown scheme) or ExternalToolError (the store failed).
"""

from __future__ import annotations

import concurrent.futures
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from gitops_ml.atomic import write_atomic
from gitops_ml.errors import ConfigError, ExternalToolError, UsageError

SCHEMES = ("s3",)
THREADS = 16


@dataclass(frozen=True)
class StoreLocation:
    scheme: str
    bucket: str
    prefix: str  # without a trailing slash

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")


def parse_location(uri: str) -> StoreLocation:
    scheme, sep, rest = uri.partition("://")
    if not sep or not scheme:
        raise UsageError(f"{uri!r} is neither a directory nor a URI", hint="give a capture directory or s3://BUCKET/PREFIX")
    if scheme not in SCHEMES:
        raise UsageError(f"{uri}: unknown scheme {scheme}:// (captures are read from s3:// and stores that speak the S3 API)")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise UsageError(f"{uri}: no bucket", hint="s3://BUCKET/PREFIX")
    return StoreLocation(scheme, bucket, prefix.strip("/"))


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int

    def relative(self, location: StoreLocation) -> str:
        return self.key[len(location.prefix) + 1 :] if location.prefix else self.key


def _client(endpoint: str, region: str) -> Any:
    try:
        import boto3  # noqa: PLC0415 - optional extra
        from botocore.config import Config  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigError("reading captures from S3 needs boto3", hint="pip install 'gitops-ml[s3]'") from exc
    config = Config(connect_timeout=10, read_timeout=60, retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=THREADS)
    # a session of its own: boto3's default session keeps the first credentials it resolved for the process
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint or None, region_name=region or None, config=config)


def _failure(location: StoreLocation, exc: Exception) -> Exception:
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError  # noqa: PLC0415

    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return ConfigError(
            f"{location}: no S3 credentials", hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE); AWS_ENDPOINT_URL_S3 for MinIO or Ceph"
        )
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "?"))
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
            return ConfigError(f"{location}: S3 refused the credentials ({code})", hint="check the credentials' read and list permission on the bucket")
        if code in ("NoSuchBucket", "404"):
            return ExternalToolError(f"{location}: bucket {location.bucket!r} does not exist")
        return ExternalToolError(f"{location}: S3 refused: {code}: {error.get('Message', '')}".rstrip(": "))
    return ExternalToolError(f"{location}: cannot reach the object store: {exc}", hint="check AWS_ENDPOINT_URL_S3 (or the sink's endpoint) and the network")


def list_objects(location: StoreLocation, prefixes: list[str], *, endpoint: str = "", region: str = "") -> list[StoredObject]:
    """Objects under each of `prefixes` (relative to the location's prefix)."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    client = _client(endpoint, region)
    out: list[StoredObject] = []
    try:
        paginator = client.get_paginator("list_objects_v2")
        for prefix in prefixes:
            full = f"{location.prefix}/{prefix}" if location.prefix else prefix
            for page in paginator.paginate(Bucket=location.bucket, Prefix=full):
                out.extend(StoredObject(o["Key"], int(o["Size"])) for o in page.get("Contents", []))
    except (BotoCoreError, ClientError) as exc:
        raise _failure(location, exc) from exc
    return out


def list_partitions(location: StoreLocation, prefix: str, *, endpoint: str = "", region: str = "") -> list[str]:
    """The `key=value/` sub-prefixes directly under a prefix (one level of partitions)."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    client = _client(endpoint, region)
    full = f"{location.prefix}/{prefix}" if location.prefix else prefix
    out: list[str] = []
    try:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=location.bucket, Prefix=full, Delimiter="/"):
            out.extend(p["Prefix"][len(full):].rstrip("/") for p in page.get("CommonPrefixes", []))
    except (BotoCoreError, ClientError) as exc:
        raise _failure(location, exc) from exc
    return out


def download(
    location: StoreLocation, objects: list[StoredObject], cache: Path, *, endpoint: str = "", region: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Local copies of the objects under `cache` (same relative keys), downloading what is not cached."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    client = _client(endpoint, region)
    root = cache / location.bucket / location.prefix if location.prefix else cache / location.bucket
    targets = [(o, root / o.relative(location)) for o in objects]
    missing = [(o, p) for o, p in targets if not (p.is_file() and p.stat().st_size == o.size)]

    def fetch(item: tuple[StoredObject, Path]) -> None:
        obj, path = item
        body = client.get_object(Bucket=location.bucket, Key=obj.key)["Body"].read()
        write_atomic(path, body)

    done = 0
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(THREADS, (os.cpu_count() or 2) * 4)) as pool:
            for _ in pool.map(fetch, missing):
                done += 1
                if progress is not None:
                    progress(done, len(missing))
    except (BotoCoreError, ClientError) as exc:
        raise _failure(location, exc) from exc
    return [p for _, p in targets]

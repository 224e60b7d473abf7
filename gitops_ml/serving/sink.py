"""Uploads closed capture files to the team's object store (S3 API) from a background thread.

Owns the queue of closed files, gzip, retries with capped backoff, the last upload at shutdown
within a deadline, and the upload counters in /metrics. It must never block or fail a request: it
touches only files Capture has closed, and a file leaves the pod's disk only once its upload succeeded.
The one importer of boto3 in the serving package (the image has no adapters layer), lazily.
"""

from __future__ import annotations

import collections
import os
import re
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from gitops_ml.serving.telemetry import log_event

SCHEMES = ("s3",)
# what Capture writes: hive-style partitions, so DuckDB, pyarrow, Spark, Trino and Athena read the keys as columns
CAPTURE_FILE = re.compile(r"^model=[^/]+/version=[^/]+/date=\d{4}-\d{2}-\d{2}/hour=\d{2}/[^/]+\.jsonl$")
CHUNK = 1 << 20
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0


class UploadError(Exception):
    """Raised by a Store when an object could not be written; the file stays and is tried again."""


@dataclass(frozen=True)
class SinkTarget:
    """Where closed files go: s3://bucket/prefix."""

    scheme: str
    bucket: str
    prefix: str  # without a trailing slash; "" for the bucket's root

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")


def parse_sink_uri(uri: str) -> SinkTarget:
    """s3://bucket[/prefix] -> SinkTarget; ValueError naming what is wrong."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise ValueError(f"capture sink {uri!r} is not a URI: use s3://BUCKET/PREFIX")
    if scheme not in SCHEMES:
        raise ValueError(f"capture sink {uri!r}: unknown scheme {scheme}:// (supported: s3:// and stores that speak the S3 API)")
    bucket, _, prefix = rest.partition("/")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket):
        raise ValueError(f"capture sink {uri!r}: {bucket!r} is not a bucket name")
    return SinkTarget(scheme, bucket, prefix.strip("/"))


class Store(Protocol):
    def put(self, key: str, body: bytes) -> None:
        """Write one object; UploadError when it was not written."""


class S3Store:
    """put_object through boto3; credentials from its chain (env, IRSA web identity, instance role)."""

    def __init__(self, target: SinkTarget, *, endpoint: str = "", region: str = "") -> None:
        self.target = target
        self.endpoint = endpoint
        self.region = region
        self.client: Any = None

    def _client(self) -> Any:
        if self.client is None:
            try:
                import boto3  # noqa: PLC0415 - only a server with a sink loads it
                from botocore.config import Config  # noqa: PLC0415
            except ImportError as exc:
                raise UploadError("boto3 is not installed in this image: install gitops-ml[s3] to upload captures") from exc
            config = Config(connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT, retries={"total_max_attempts": 1})
            # the retries are ours (backoff across files, a deadline at shutdown), so botocore tries once
            self.client = boto3.client("s3", endpoint_url=self.endpoint or None, region_name=self.region or None, config=config)
        return self.client

    def put(self, key: str, body: bytes) -> None:
        client = self._client()
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError  # noqa: PLC0415

        try:
            client.put_object(Bucket=self.target.bucket, Key=key, Body=body, ContentType="application/gzip")
        except NoCredentialsError as exc:
            raise UploadError("no S3 credentials: set credentialsSecret in the deployment file or give the pod an identity (IRSA)") from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise UploadError(f"S3 refused: {error.get('Code', '?')}: {error.get('Message', '')}".rstrip(": ")) from exc
        except BotoCoreError as exc:
            raise UploadError(f"cannot reach the object store: {exc}") from exc


@dataclass
class _Closed:
    path: Path
    records: int | None  # None: a file from an earlier process, counted on the sink's thread


class Sink:
    """Background uploader of one model's closed capture files; a prometheus-client collector."""

    def __init__(
        self, root: Path, model: str, target: SinkTarget, store: Store, *,
        open_records: Callable[[], int] = lambda: 0, max_backoff: float = 60.0,
    ) -> None:
        self.root = Path(root)
        self.model = model
        self.target = target
        self.store = store
        self.open_records = open_records
        self.max_backoff = max_backoff
        self.queue: collections.deque[_Closed] = collections.deque()
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._loop, name="gitops-ml-sink", daemon=True)
        self.stopping = False
        self.deadline = float("inf")
        self.pending_records = 0
        self.uploaded_records = 0
        self.uploaded_bytes = 0
        self.uploaded_files = 0
        self.dropped_records = 0
        self.failures = 0
        self.failing = False

    # --- called by the server -----------------------------------------------------------------

    def start(self) -> None:
        """Queue files an earlier process left (a restarted container keeps its emptyDir), then upload
        in the background. Call before Capture starts writing: no file found here is still open."""
        model_dir = self.root / f"model={self.model}"
        leftovers = sorted(p for p in model_dir.glob("version=*/date=*/hour=*/*.jsonl") if p.is_file())
        with self.cond:
            self.queue.extend(_Closed(p, None) for p in leftovers)
        self.thread.start()

    def file_closed(self, path: Path, records: int) -> None:
        """Capture's on_close hook (its writer thread): queue the file, never wait."""
        with self.cond:
            self.queue.append(_Closed(path, records))
            self.pending_records += records
            self.cond.notify()

    def close(self, timeout: float) -> None:
        """Upload what is left within `timeout` seconds; files not uploaded by then stay on disk."""
        with self.cond:
            self.stopping = True
            self.deadline = time.monotonic() + timeout
            self.cond.notify()
        if self.thread.is_alive():
            self.thread.join(timeout + 1.0)

    # --- the thread -----------------------------------------------------------------------------

    def _loop(self) -> None:
        with self.cond:
            unknown = [item for item in self.queue if item.records is None]
        for item in unknown:
            item.records = _count_lines(item.path)
            with self.cond:
                self.pending_records += item.records
        backoff = 0.0
        while True:
            with self.cond:
                while not self.queue and not self.stopping:
                    self.cond.wait()
                if not self.queue or time.monotonic() >= self.deadline:
                    break
                item = self.queue[0]
            try:
                sent = self._upload(item.path)
            except FileNotFoundError:
                self._done(item, dropped=True)
                continue
            except (UploadError, OSError) as exc:
                self.failures += 1
                if not self.failing:  # one line per streak of failures, not one per attempt
                    self.failing = True
                    log_event("error", "capture upload failed; files stay on disk and are tried again", sink=str(self.target), error=str(exc))
                backoff = min(self.max_backoff, max(0.5, backoff * 2))
                with self.cond:
                    wait = min(backoff, self.deadline - time.monotonic()) if self.stopping else backoff
                    if wait > 0:
                        self.cond.wait(wait)  # close() cuts the wait short
                continue
            if self.failing:
                self.failing = False
                log_event("info", "capture upload recovered", sink=str(self.target))
            backoff = 0.0
            self.uploaded_bytes += sent
            self.uploaded_files += 1
            self._done(item, dropped=False)
        if self.queue:
            left = list(self.queue)
            log_event(
                "warning", "capture files left on disk for the next start", sink=str(self.target),
                files=len(left), records=sum(i.records or 0 for i in left),
            )

    def _upload(self, path: Path) -> int:
        """Gzip and put one file; its size sent. Files outside the layout are left alone."""
        relative = path.relative_to(self.root).as_posix()
        if not CAPTURE_FILE.match(relative):
            raise FileNotFoundError(relative)
        if path.stat().st_size == 0:
            return 0
        body = _gzip(path)
        self.store.put(self.target.key(relative + ".gz"), body)
        return len(body)

    def _done(self, item: _Closed, *, dropped: bool) -> None:
        records = item.records or 0
        with self.cond:
            self.queue.popleft()
            self.pending_records -= records
            if dropped:
                self.dropped_records += records
            else:
                self.uploaded_records += records
        if not dropped:
            try:
                item.path.unlink()
            except OSError:
                pass  # uploaded: a copy left behind is uploaded again under the same key, harmlessly
            _remove_past_hour(item.path.parent)

    # --- /metrics -------------------------------------------------------------------------------

    def collect(self) -> Iterator[Any]:
        uploaded = CounterMetricFamily("gitops_ml_capture_uploaded_records", "Capture records uploaded to the sink.")
        uploaded.add_metric([], self.uploaded_records)
        yield uploaded
        sent = CounterMetricFamily("gitops_ml_capture_uploaded_bytes", "Compressed bytes uploaded to the sink.")
        sent.add_metric([], self.uploaded_bytes)
        yield sent
        pending = GaugeMetricFamily("gitops_ml_capture_pending_records", "Capture records on the pod's disk, not yet uploaded.")
        pending.add_metric([], self.pending_records + self.open_records())
        yield pending
        dropped = CounterMetricFamily("gitops_ml_capture_upload_dropped_records", "Capture records whose file vanished before its upload.")
        dropped.add_metric([], self.dropped_records)
        yield dropped
        failures = CounterMetricFamily("gitops_ml_capture_upload_failures", "Failed upload attempts (each is retried).")
        failures.add_metric([], self.failures)
        yield failures


def _gzip(path: Path) -> bytes:
    """The file gzip-compressed in memory, read in chunks (a capture file is at most maxFileBytes)."""
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: a gzip header, mtime 0
    parts = []
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            parts.append(packer.compress(chunk))
    parts.append(packer.flush())
    return b"".join(parts)


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as source:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: source.read(CHUNK), b""))
    except OSError:
        return 0


def _remove_past_hour(hour_dir: Path) -> None:
    """Remove an emptied hour=HH directory (and its date) once that hour is over: Capture only ever
    opens files under the current hour, so no later mkdir can race with this rmdir."""
    now = datetime.now(timezone.utc).strftime("date=%Y-%m-%d/hour=%H")
    if f"{hour_dir.parent.name}/{hour_dir.name}" >= now:
        return
    for directory in (hour_dir, hour_dir.parent):
        try:
            os.rmdir(directory)
        except OSError:
            return

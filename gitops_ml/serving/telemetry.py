"""Telemetry of the scoring server: Prometheus metrics, JSON log lines, and request capture.

Per request, metrics are plain integer updates; prometheus-client only formats them at scrape
time, so metrics cost almost nothing on the hot path. Capture runs on its own thread behind a
bounded queue: a slow or full disk drops records (counted), it never blocks or fails a request.
"""

from __future__ import annotations

import bisect
import errno
import os
import queue
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, InfoMetricFamily

from gitops_ml.serving.predictions import IdentityLabels, identity

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# why admission control refuses a scoring request (the `reason` of gitops_ml_rejected_total)
REJECT_REASONS = ("body_budget", "body_timeout", "queue_full", "queue_timeout", "unauthorized")


def log_event(level: str, message: str, **fields: Any) -> None:
    """One JSON log line on stderr (server events: start, init, failures). Never payloads or keys."""
    record = {"time": _now(), "level": level, "message": message, **fields}
    sys.stderr.buffer.write(orjson.dumps(record, default=str) + b"\n")
    sys.stderr.flush()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Histogram:
    """Cumulative-at-scrape histogram on plain lists (the request path does one bisect and two adds)."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def family(self, name: str, doc: str, labels: dict[str, str]) -> HistogramMetricFamily:
        buckets, running = [], 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts):
            running += count
            buckets.append((bound, running))
        family = HistogramMetricFamily(name, doc, labels=list(labels))
        family.add_metric(list(labels.values()), buckets, self.total)
        return family


class Metrics:
    """Counters the server bumps per request; a prometheus-client collector reads them at scrape time."""

    def __init__(self, model: str, version: str, gauges: Callable[[], dict[str, float]] | None = None, environment: str = "", track: str = "") -> None:
        self.model = model
        self.version = version
        # a series Prometheus first sees at 3 loses those 3 from rate(): the answers a canary analysis
        # divides by exist from the start, at 0
        self.requests: dict[tuple[str, int], int] = {("score", status): 0 for status in (200, 500, 503, 504)}
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch_sizes = Histogram(BATCH_BUCKETS)
        # likewise refusals: an alert on the share of queue_full must find the series before the first one
        self.rejected: dict[str, int] = dict.fromkeys(REJECT_REASONS, 0)
        self.capture_dropped = 0
        self.gauges = gauges or (lambda: {})
        self.registry = CollectorRegistry(auto_describe=False)
        # every family carries model, version, environment and track: candidates and stable share one Prometheus
        self.registry.register(IdentityLabels(self, identity(model, version, environment, track)))

    def count(self, route: str, status: int, seconds: float) -> None:
        key = (route, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        if route == "score":
            self.latency.observe(seconds)

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Any]:
        labels = {"model": self.model, "version": self.version}
        info = InfoMetricFamily("gitops_ml_model", "The model this server scores with.")
        info.add_metric([], labels)
        yield info
        requests = CounterMetricFamily("gitops_ml_requests", "HTTP requests answered, by route and status.", labels=["route", "status"])
        for (route, status), n in sorted(self.requests.items()):
            requests.add_metric([route, str(status)], n)
        yield requests
        yield self.latency.family("gitops_ml_request_duration_seconds", "Latency of scoring requests, arrival to answer.", {})
        yield self.batch_sizes.family("gitops_ml_batch_size", "Inputs per run() call.", {})
        rejected = CounterMetricFamily("gitops_ml_rejected", "Scoring requests refused by admission control, by reason.", labels=["reason"])
        for reason, n in sorted(self.rejected.items()):
            rejected.add_metric([reason], n)
        yield rejected
        dropped = CounterMetricFamily("gitops_ml_capture_dropped", "Capture records dropped (queue full or write failure).")
        dropped.add_metric([], self.capture_dropped)
        yield dropped
        docs = {
            "queue_depth": "Scoring requests waiting for a worker.",
            "in_flight": "Scoring requests being run.",
            "ready": "1 when init() has returned and the server is not draining.",
            "arriving": "Scoring requests whose body is being received or decoded (they hold no scoring slot).",
            "body_bytes": "Bytes the request bodies admitted hold (received, or decoded and waiting).",
        }
        for name, value in sorted(self.gauges().items()):
            gauge = GaugeMetricFamily(f"gitops_ml_{name}", docs.get(name, name))
            gauge.add_metric([], value)
            yield gauge


class AccessLog:
    """JSON access-log lines on stdout, written in bulk shortly after they are produced."""

    def __init__(self, stream: IO[bytes] | None = None, delay: float = 0.05) -> None:
        self.stream = stream
        self.delay = delay
        self.lines: list[bytes] = []
        self.scheduled = False

    def write(self, record: dict[str, Any], loop: Any) -> None:
        self.lines.append(orjson.dumps(record) + b"\n")
        if not self.scheduled:
            self.scheduled = True
            loop.call_later(self.delay, self.flush)

    def flush(self) -> None:
        self.scheduled = False
        if not self.lines:
            return
        data, self.lines = b"".join(self.lines), []
        stream = self.stream or sys.stdout.buffer
        try:
            stream.write(data)
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stdout must not break scoring
            pass


class Capture:
    """Samples requests into JSONL files under DIR/model=M/version=V/date=YYYY-MM-DD/hour=HH/ (hive-style,
    as the sink uploads them), rotated by size; `on_close(path, records)` hears of each closed file.

    Every record offered is either whole on disk or counted in gitops_ml_capture_dropped: lines are
    written unbuffered in batches, and a write cut short (a full disk) is truncated back to the last
    whole line, the rest of its batch counted as dropped.
    """

    def __init__(
        self, directory: str, model: str, version: str, *, sampling: float, max_file_bytes: int, metrics: Metrics,
        max_pending: int = 10000, max_pending_bytes: int = 64 * 1024 * 1024, batch_bytes: int = 256 * 1024,
        on_close: Callable[[Path, int], None] | None = None,
    ) -> None:
        self.root = Path(directory) / f"model={model}" / f"version={version}"
        self.sampling = sampling
        self.max_file_bytes = max_file_bytes
        self.metrics = metrics
        self.queue: queue.Queue[tuple[dict[str, Any], int] | None] = queue.Queue(maxsize=max_pending)
        # a slow or hung capture volume must not hold request bodies without bound: records wait
        # within a byte budget, and beyond it they are dropped (and counted)
        self.max_pending_bytes = max_pending_bytes
        self.batch_bytes = batch_bytes
        self.pending_bytes = 0
        self.budget = threading.Lock()
        self.prefix = f"{socket.gethostname()}-{os.getpid()}"
        self.thread = threading.Thread(target=self._write_loop, name="gitops-ml-capture", daemon=True)
        self.file: IO[bytes] | None = None
        self.file_hour = ""
        self.file_bytes = 0
        self.sequence = 0
        self.failed = False
        self.lines: list[bytes] = []  # the batch for the open file, not yet written
        self.batched = 0  # its bytes
        self.on_close = on_close
        self.file_records = 0  # whole records in the open file

    def start(self) -> None:
        self.thread.start()

    def dropped(self, count: int) -> None:
        with self.budget:  # offer() counts from the loop thread, the writer from its own
            self.metrics.capture_dropped += count

    def offer(self, record: dict[str, Any], size: int) -> None:
        """Queue a record of about `size` bytes for writing, or drop it when the budget is spent."""
        with self.budget:
            if self.pending_bytes + size > self.max_pending_bytes:
                self.metrics.capture_dropped += 1
                return
            self.pending_bytes += size
        try:
            self.queue.put_nowait((record, size))
        except queue.Full:
            with self.budget:
                self.pending_bytes -= size
                self.metrics.capture_dropped += 1

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, flush and close the file (called on shutdown)."""
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join(timeout)

    def _write_loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                break
            record, size = item
            self._add(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY, default=str) + b"\n")
            del record, item
            with self.budget:
                self.pending_bytes -= size
            if self.queue.empty() or self.batched >= self.batch_bytes:
                self._write_batch()
        self._write_batch()
        self._close_file()

    def _add(self, line: bytes) -> None:
        now = datetime.now(timezone.utc)
        hour = now.strftime("date=%Y-%m-%d/hour=%H")
        if self.file is None or hour != self.file_hour or self.file_bytes + self.batched + len(line) > self.max_file_bytes:
            self._write_batch()
            self._open(now, hour)
        if self.file is None:
            self.dropped(1)
            return
        self.lines.append(line)
        self.batched += len(line)

    def _write_batch(self) -> None:
        lines, self.lines, self.batched = self.lines, [], 0
        if not lines or self.file is None:
            self.dropped(len(lines))
            return
        data = memoryview(b"".join(lines))
        written = 0
        try:
            while written < len(data):
                count = self.file.write(data[written:])
                if not count:
                    raise OSError(errno.ENOSPC, "nothing was written")
                written += count
        except OSError as exc:
            self._cut_short(lines, written, exc)
            return
        self.file_bytes += written
        self.file_records += len(lines)
        if self.failed:
            self.failed = False
            log_event("info", "capture writes again")

    def _cut_short(self, lines: list[bytes], written: int, exc: OSError) -> None:
        """Keep the whole lines of a batch that reached the disk, truncate the rest, count it dropped."""
        whole, kept = 0, 0
        for line in lines:
            if whole + len(line) > written:
                break
            whole += len(line)
            kept += 1
        self.dropped(len(lines) - kept)
        self.file_records += kept
        self._failure(exc)
        assert self.file is not None
        end = self.file_bytes + whole
        try:
            os.ftruncate(self.file.fileno(), end)
            self.file.seek(end)
            self.file_bytes = end
        except OSError as truncate_failed:  # the file may end in a cut line: never append to it again
            self._failure(truncate_failed)
            self._close_file()

    def _close_file(self) -> None:
        file, self.file = self.file, None
        if file is None:
            return
        self._guard(file.close)
        records, self.file_records = self.file_records, 0
        if self.on_close is not None:
            self.on_close(Path(file.name), records)

    def _open(self, now: datetime, hour: str) -> None:
        self._close_file()
        directory = self.root / hour
        self.sequence += 1
        path = directory / f"capture-{now:%Y%m%dT%H%M%S}-{self.prefix}-{self.sequence:04d}.jsonl"

        def open_file() -> None:
            directory.mkdir(parents=True, exist_ok=True)
            # unbuffered: a write that fails must fail here, where its records are still known
            self.file = open(path, "ab", buffering=0)

        if self._guard(open_file):
            self.file_hour, self.file_bytes = hour, 0

    def _guard(self, action: Callable[[], Any]) -> bool:
        try:
            action()
            return True
        except OSError as exc:
            self._failure(exc)
            return False

    def _failure(self, exc: OSError) -> None:
        if not self.failed:  # log the first failure only: a full disk would flood the log
            self.failed = True
            log_event("error", "capture write failed; records are dropped (and counted) until it recovers", error=str(exc))


def monotonic() -> float:
    return time.perf_counter()

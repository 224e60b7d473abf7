"""Captured records -> the numbers monitor compares: which files a window needs, and DuckDB reading them.

Files are the server's hive-style partitions (model=/version=/date=/hour=, .jsonl or .jsonl.gz), or
the flat model/version/date/hour layout of gitops-ml before the sink; partitions outside the window
are never opened. DuckDB reads the JSON lines in parallel, skips unreadable ones (counted), and
extracts each feature's path; statistics are left to drift.py. Nothing here prints.
"""

from __future__ import annotations

import re
import tempfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from gitops_ml.errors import LoadError
from gitops_ml.monitor.features import FeaturePath
from gitops_ml.monitor.profile import NUMERIC

CAPTURE_FORMAT = 1  # the newest record format this version reads (gitops_ml.serving.app writes it)
SUFFIXES = (".jsonl", ".jsonl.gz")
_HIVE = re.compile(r"^(model|version|date|hour)=(.+)$")
_FLAT_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FLAT_HOUR = re.compile(r"^\d{2}$")
COLUMNS = "{'format': 'INTEGER', 'time': 'VARCHAR', 'model': 'VARCHAR', 'version': 'VARCHAR', 'status': 'INTEGER', 'latency_ms': 'DOUBLE', 'input': 'JSON', 'output': 'JSON'}"
_NUMBER_TYPES = "('UBIGINT', 'BIGINT', 'DOUBLE', 'HUGEINT')"


@dataclass(frozen=True)
class Window:
    """[since, until) in UTC; either end open."""

    since: datetime | None = None
    until: datetime | None = None

    def hour_may_overlap(self, date: str, hour: str | None) -> bool:
        """Whether the partition date=D/hour=H (hour None: the whole day) can hold records of the window."""
        try:
            start = datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        except ValueError:
            return True  # not ours to judge: the records' own times decide
        if hour is not None and hour.isdigit():
            start += timedelta(hours=int(hour))
            end = start + timedelta(hours=1)
        else:
            end = start + timedelta(days=1)
        return (self.until is None or start < self.until) and (self.since is None or end > self.since)


def partition_values(relative: Path) -> dict[str, str]:
    """model/version/date/hour of a capture file from its path (hive-style, or the older flat layout)."""
    parts = relative.parts[:-1]
    values = {m.group(1): m.group(2) for m in (_HIVE.match(p) for p in parts) if m}
    if values:
        return values
    if len(parts) >= 4 and _FLAT_DATE.match(parts[-2]) and _FLAT_HOUR.match(parts[-1]):
        return {"model": parts[-4], "version": parts[-3], "date": parts[-2], "hour": parts[-1]}
    return {}


def wanted(relative: Path, model: str, window: Window) -> bool:
    """Whether a capture file (path relative to the capture root) may hold the model's records in the window."""
    if not relative.name.endswith(SUFFIXES):
        return False
    values = partition_values(relative)
    if values.get("model", model) != model:
        return False
    date = values.get("date")
    return date is None or window.hour_may_overlap(date, values.get("hour"))


def local_files(root: Path, model: str, window: Window) -> list[Path]:
    """Capture files under a local directory that may hold the model's records in the window."""
    if root.is_file():
        return [root] if root.name.endswith(SUFFIXES) else []
    hive = root / f"model={model}"
    base = hive if hive.is_dir() else root
    out = []
    for path in sorted(base.rglob("*.jsonl*")):
        if path.is_file() and wanted(path.relative_to(root), model, window):
            out.append(path)
    return out


@dataclass
class Values:
    """Production values of one feature: finite numbers, or category -> count."""

    numbers: np.ndarray = field(default_factory=lambda: np.zeros(0))
    categories: dict[str, int] = field(default_factory=dict)
    missing: int = 0


@dataclass
class Records:
    """What a window of captures holds for one model version."""

    files: int = 0
    lines: int = 0  # records read (readable or not) from the files
    unreadable: int = 0
    truncated_files: tuple[str, ...] = ()
    other_models: int = 0
    other_versions: dict[str, int] = field(default_factory=dict)
    newer_format: int = 0
    older_format: int = 0  # records from before refusals were captured (format 0)
    outside_window: int = 0
    total: int = 0  # records of the version in the window
    scored: int = 0  # status 200
    refused: int = 0  # status 400/422: the input schema (or score.py) refused the input
    errors: int = 0  # status >= 500
    latency_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    first: datetime | None = None
    last: datetime | None = None
    values: dict[str, Values] = field(default_factory=dict)  # feature path (features) or "output:" + path


@dataclass(frozen=True)
class Wanted:
    """A feature to extract: where (input or output) and how (numeric or categorical)."""

    key: str
    path: FeaturePath
    output: bool
    kind: str


def read_records(files: Sequence[Path], *, model: str, version: str, window: Window, features: Iterable[Wanted]) -> Records:
    """Read capture files with DuckDB and extract the features of the version's scored records."""
    try:
        import duckdb  # noqa: PLC0415 - an extra: gitops-ml[monitor]
    except ImportError as exc:  # pragma: no cover - the CLI checks first and says how to install
        raise LoadError("monitor needs DuckDB", hint="pip install 'gitops-ml[monitor]'") from exc
    records = Records(files=len(files))
    if not files:
        return records
    with tempfile.TemporaryDirectory(prefix="gitops-ml-monitor-") as scratch:
        readable, truncated = _salvage(files, Path(scratch))
        records.truncated_files = tuple(truncated)
        con = duckdb.connect()
        try:
            con.execute(
                f"CREATE TEMP TABLE r AS SELECT format, model, version, status, latency_ms, input, output, "
                f"try_cast(time AS TIMESTAMPTZ) AS t FROM read_json($files, format='newline_delimited', columns={COLUMNS}, "
                f"ignore_errors=true, maximum_object_size=67108864)",
                {"files": [str(p) for p in readable]},
            )
        except duckdb.Error as exc:
            raise LoadError(f"cannot read the captured records: {exc}") from exc
        _count(con, records, model, version, window)
        for want in features:
            records.values[want.key] = _extract(con, want)
        con.close()
    return records


def _salvage(files: Sequence[Path], scratch: Path) -> tuple[list[Path], list[str]]:
    """Gzip files that end early (a copy cut short) are replaced by what can be decompressed."""
    readable: list[Path] = []
    truncated: list[str] = []
    for n, path in enumerate(files):
        if not path.name.endswith(".gz"):
            readable.append(path)
            continue
        try:
            data, complete = _gunzip(path.read_bytes())
        except OSError:
            truncated.append(str(path))
            continue
        if complete:
            readable.append(path)
            continue
        truncated.append(str(path))
        whole_lines = data[: data.rfind(b"\n") + 1]
        if whole_lines:
            part = scratch / f"salvaged-{n}.jsonl"
            part.write_bytes(whole_lines)
            readable.append(part)
    return readable, truncated


def _gunzip(raw: bytes) -> tuple[bytes, bool]:
    """(bytes decompressed, whether the stream was complete); stops at the first corrupt byte."""
    out: list[bytes] = []
    rest = raw
    while rest:
        unpacker = zlib.decompressobj(31)
        try:
            out.append(unpacker.decompress(rest))
        except zlib.error:
            return b"".join(out), False
        if not unpacker.eof:
            return b"".join(out), False
        rest = unpacker.unused_data  # concatenated gzip members
    return b"".join(out), True


def _count(con: Any, records: Records, model: str, version: str, window: Window) -> None:
    time_filter, params = _time_filter(window)
    row = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE model IS NULL AND status IS NULL), "
        "count(*) FILTER (WHERE model IS NOT NULL AND model <> $model) FROM r",
        {"model": model},
    ).fetchone()
    records.lines, records.unreadable, records.other_models = int(row[0]), int(row[1]), int(row[2])
    ours = "model = $model AND status IS NOT NULL"
    for other, n in con.execute(
        f"SELECT coalesce(version, '?'), count(*) FROM r WHERE {ours} AND coalesce(version, '?') <> $version AND {time_filter} GROUP BY 1 ORDER BY 1",
        {"model": model, "version": version, **params},
    ).fetchall():
        records.other_versions[str(other)] = int(n)
    row = con.execute(
        f"SELECT count(*) FILTER (WHERE NOT ({time_filter})), count(*) FILTER (WHERE {time_filter} AND coalesce(format, 0) > {CAPTURE_FORMAT}) "
        f"FROM r WHERE {ours} AND version = $version",
        {"model": model, "version": version, **params},
    ).fetchone()
    records.outside_window, records.newer_format = int(row[0]), int(row[1])
    con.execute(
        f"CREATE TEMP TABLE m AS SELECT * FROM r WHERE {ours} AND version = $version AND {time_filter} AND coalesce(format, 0) <= {CAPTURE_FORMAT}",
        {"model": model, "version": version, **params},
    )
    row = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 200), count(*) FILTER (WHERE status IN (400, 422)), "
        "count(*) FILTER (WHERE status >= 500), count(*) FILTER (WHERE coalesce(format, 0) = 0), min(t), max(t) FROM m"
    ).fetchone()
    records.total, records.scored, records.refused, records.errors, records.older_format = (int(v) for v in row[:5])
    records.first, records.last = row[5], row[6]
    latency = con.execute("SELECT latency_ms FROM m WHERE latency_ms IS NOT NULL").fetchnumpy()["latency_ms"]
    records.latency_ms = np.asarray(latency, dtype=np.float64)


def _time_filter(window: Window) -> tuple[str, dict[str, Any]]:
    clauses, params = ["t IS NOT NULL"], {}
    if window.since is not None:
        clauses.append("t >= $since")
        params["since"] = window.since
    if window.until is not None:
        clauses.append("t < $until")
        params["until"] = window.until
    return " AND ".join(clauses), params


def _extract(con: Any, want: Wanted) -> Values:
    document = "output" if want.output else "input"
    json_path = want.path.json_path().replace("'", "''")
    listed = f"json_extract({document}, '{json_path}')" if want.path.has_wildcard else f"[json_extract({document}, '{json_path}')]"
    elements = (
        f"WITH v AS (SELECT unnest({listed}) AS j FROM m WHERE status = 200), "
        "e AS (SELECT unnest(CASE WHEN json_type(j) = 'ARRAY' THEN json_extract(j, '$[*]') ELSE [j] END) AS e FROM v) "
    )
    if want.kind == NUMERIC:
        array = con.execute(
            elements + f"SELECT CASE WHEN json_type(e) IN {_NUMBER_TYPES} THEN e::DOUBLE END AS x FROM e"
        ).fetchnumpy()["x"]
        numbers = np.ma.getdata(array).astype(np.float64) if np.ma.isMaskedArray(array) else np.asarray(array, dtype=np.float64)
        if np.ma.isMaskedArray(array):
            numbers = numbers[~np.ma.getmaskarray(array)]
        finite = numbers[np.isfinite(numbers)]
        return Values(numbers=finite, missing=int(len(array) - finite.size))
    rows = con.execute(
        elements + "SELECT k, count(*) FROM (SELECT CASE json_type(e) "
        "WHEN 'VARCHAR' THEN json_extract_string(e, '$') WHEN 'BOOLEAN' THEN e::VARCHAR "
        "WHEN 'DOUBLE' THEN CASE WHEN e::DOUBLE = floor(e::DOUBLE) AND abs(e::DOUBLE) < 1e18 THEN (e::DOUBLE)::BIGINT::VARCHAR ELSE e::VARCHAR END "
        f"WHEN 'NULL' THEN NULL ELSE CASE WHEN json_type(e) IN {_NUMBER_TYPES} THEN e::VARCHAR END END AS k FROM e) GROUP BY k"
    ).fetchall()
    counted = {str(k): int(n) for k, n in rows if k is not None}
    missing = sum(int(n) for k, n in rows if k is None)
    return Values(categories=counted, missing=missing)


def iter_versions(records: Records) -> Iterator[tuple[str, int]]:
    yield from sorted(records.other_versions.items())

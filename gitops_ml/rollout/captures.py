"""Capture records read back from a local directory: the JSONL files the server writes under
<dir>/<model>/<version>/<YYYY-MM-DD>/<HH>/ (hive-style model=<model>/version=<version>/... is read too).

One function, `read_captures(directory, model, version)`, so that other sources (an object store
synced to a directory first) plug in at one place. Lines that are not a JSON object (a line cut by a
full disk) are counted, not fatal. Never prints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import orjson

from gitops_ml.errors import UsageError


@dataclass(frozen=True)
class CaptureRecord:
    """One captured request and the answer one version gave."""

    request_id: str
    time: str
    version: str
    track: str  # "" for the stable version
    status: int
    latency_ms: float
    input: Any
    output: Any


@dataclass
class ReadStats:
    files: int = 0
    records: int = 0
    unreadable: int = 0
    directories: list[str] = field(default_factory=list)


def version_directories(directory: Path, model: str, version: str) -> list[Path]:
    """Where captures of model@version live under directory (either layout), existing ones only."""
    candidates = [directory / model / version, directory / f"model={model}" / f"version={version}"]
    return [d for d in candidates if d.is_dir()]


def read_captures(directory: Path, model: str, version: str, stats: ReadStats | None = None) -> Iterator[CaptureRecord]:
    """Records of model@version under a local capture directory, file by file in name order (the
    names start with the date, hour and time the file was opened)."""
    if not directory.is_dir():
        raise UsageError(f"capture directory {directory} does not exist")
    stats = stats if stats is not None else ReadStats()
    for root in version_directories(directory, model, version):
        stats.directories.append(str(root))
        files = sorted(
            os.path.join(dirpath, name) for dirpath, _, names in os.walk(root) for name in names if name.endswith(".jsonl")
        )
        for path in files:
            stats.files += 1
            with open(path, "rb") as fh:
                for line in fh:
                    record = _record(line)
                    if record is None:
                        if line.strip():
                            stats.unreadable += 1
                        continue
                    stats.records += 1
                    yield record


def _record(line: bytes) -> CaptureRecord | None:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("request_id"), str):
        return None
    try:
        return CaptureRecord(
            request_id=data["request_id"],
            time=str(data.get("time", "")),
            version=str(data.get("version", "")),
            track=str(data.get("track", "")),
            status=int(data.get("status", 0)),
            latency_ms=float(data.get("latency_ms", 0.0)),
            input=data.get("input"),
            output=data.get("output"),
        )
    except (TypeError, ValueError):
        return None

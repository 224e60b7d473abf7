"""Helpers of the monitor tests: a copy of the example repository, capture files written as the
server writes them (hive-style partitions, JSON lines, optionally gzip), and the CLI in-process."""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from click.testing import CliRunner
from support import model_version

from gitops_ml.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "repo-layout"
NOW = datetime.now(timezone.utc)
# the version staging runs (it tracks the newest): what the server writes into captures
IRIS_VERSION = model_version("iris")


def copy_example(target: Path) -> Path:
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("deploy"))
    return target


@dataclass
class Invoked:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def invoke(*args: str, env: dict[str, str] | None = None) -> Invoked:
    result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return Invoked(result.exit_code, result.stdout, result.stderr)


def iris_rows(n: int, *, seed: int = 0, shift: tuple[float, float, float, float] = (0, 0, 0, 0)) -> np.ndarray:
    """Rows drawn from the iris data (what production sends when nothing drifted), shifted per column."""
    from sklearn.datasets import load_iris

    x, _ = load_iris(return_X_y=True)
    rng = np.random.default_rng(seed)
    return x[rng.integers(0, len(x), n)] + np.asarray(shift)


def record(
    rows: Iterable[Iterable[float]],
    predictions: list[int] | None = None,
    *,
    status: int = 200,
    when: datetime | None = None,
    model: str = "iris",
    version: str = IRIS_VERSION,
    fmt: int | None = 1,
    latency_ms: float = 2.0,
) -> dict[str, Any]:
    rows = [list(map(float, r)) for r in rows]
    out: dict[str, Any] = {}
    if fmt is not None:
        out["format"] = fmt
    out.update(
        request_id="r",
        time=(when or NOW - timedelta(minutes=5)).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        model=model,
        version=version,
        status=status,
        latency_ms=latency_ms,
        input={"data": rows},
        output={"predictions": predictions if predictions is not None else [0] * len(rows)}
        if status == 200
        else {"error": "invalid_input", "message": "no", "request_id": "r", "field": "data"},
    )
    return out


def batch(rows: np.ndarray, per_request: int = 5, **options: Any) -> list[dict[str, Any]]:
    """Records of requests of `per_request` rows each; predictions by petal length (as the model would, roughly)."""
    out = []
    for start in range(0, len(rows), per_request):
        chunk = rows[start : start + per_request]
        predictions = [0 if r[2] < 2.5 else 1 if r[2] < 4.9 else 2 for r in chunk]
        out.append(record(chunk, predictions, **options))
    return out


def write_capture(
    root: Path,
    records: list[dict[str, Any]],
    *,
    name: str = "capture-1.jsonl",
    gz: bool = False,
    model: str = "iris",
    version: str = IRIS_VERSION,
    when: datetime | None = None,
    flat: bool = False,
) -> Path:
    when = when or NOW
    if flat:  # the layout of gitops-ml before the sink
        directory = root / model / version / f"{when:%Y-%m-%d}" / f"{when:%H}"
    else:
        directory = root / f"model={model}" / f"version={version}" / f"date={when:%Y-%m-%d}" / f"hour={when:%H}"
    directory.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    path = directory / (name + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz else data)
    return path

"""How fast `gitops-ml monitor` reads a million captured records, DuckDB against pyarrow, over local
files and over S3 (a real SeaweedFS on 127.0.0.1), in one run, medians side by side.

    .venv/bin/python benchmarks/monitor.py                 # 1,000,000 records in 20 gzip files
    .venv/bin/python benchmarks/monitor.py --records 200000 --runs 1

What is timed is the engine-dependent part: from capture files (or objects) to the numbers drift
needs (the version's scored records, each feature's values, predictions by class). Both engines must
produce the same numbers, which is checked. Then the whole `monitor` use case end to end (with the
statistics) on the local files, for the "under a minute" target. The pyarrow variant reads each file
with pyarrow.json.read_json in a thread pool: pyarrow.dataset's JSON format hangs on gzip files
(pyarrow 26), and its reader fails a whole file on one bad line where DuckDB skips the line.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.s3store: the same SeaweedFS the tests start

from gitops_ml.monitor.features import FeaturePath  # noqa: E402
from gitops_ml.monitor.profile import CATEGORICAL, NUMERIC  # noqa: E402
from gitops_ml.monitor.records import Wanted, Window, read_records  # noqa: E402

FEATURES = [FeaturePath.parse(f"data[*][{i}]") for i in range(4)]
PREDICTIONS = FeaturePath.parse("predictions")
SINCE = datetime(2026, 1, 1, tzinfo=timezone.utc)


def generate(root: Path, records: int, per_file: int) -> list[Path]:
    """Capture files as the server writes them: one iris row per request, 2 % refused by the schema."""
    rng = np.random.default_rng(0)
    files = []
    for n, start in enumerate(range(0, records, per_file)):
        count = min(per_file, records - start)
        rows = np.round(rng.normal([5.8, 3.0, 3.7, 1.2], [0.8, 0.4, 1.7, 0.7], (count, 4)), 1)
        refused = rng.random(count) < 0.02
        hour = n % 24
        directory = root / "model=iris" / "version=1.0.0" / "date=2026-11-01" / f"hour={hour:02d}"
        directory.mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(count):
            record = {
                "format": 1, "request_id": f"r{start + i}", "time": f"2026-11-01T{hour:02d}:{i % 60:02d}:00.000Z", "model": "iris",
                "version": "1.0.0", "status": 422 if refused[i] else 200, "latency_ms": 1.5,
                "input": {"data": [rows[i].tolist()]},
                "output": {"error": "invalid_input", "message": "x", "request_id": "r", "field": "data"} if refused[i]
                else {"predictions": [int(rows[i][2] > 2.5) + int(rows[i][2] > 4.9)]},
            }
            lines.append(orjson.dumps(record))
        path = directory / f"capture-{n:04d}.jsonl.gz"
        path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n", 6))
        files.append(path)
    return files


Summary = tuple[int, tuple[float, ...], tuple[tuple[str, int], ...]]


def wants() -> list[Wanted]:
    return [Wanted(str(p), p, False, NUMERIC) for p in FEATURES] + [Wanted("output:predictions", PREDICTIONS, True, CATEGORICAL)]


def duckdb_summary(files: list[Path]) -> Summary:
    records = read_records(files, model="iris", version="1.0.0", window=Window(SINCE, None), features=wants())
    sums = tuple(round(float(records.values[str(p)].numbers.sum()), 3) for p in FEATURES)
    return records.scored, sums, tuple(sorted(records.values["output:predictions"].categories.items()))


def arrow_summary(tables: list[Any]) -> Summary:
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.concat_tables(tables, promote_options="permissive")
    # the same selection as the product's: model, version, window, format, then status 200
    moment = pc.cast(pc.utf8_slice_codeunits(table["time"], 0, 19), pa.timestamp("s"))
    ours = pc.and_(pc.equal(table["model"], "iris"), pc.equal(table["version"], "1.0.0"))
    ours = pc.and_(ours, pc.and_(pc.greater_equal(moment, pa.scalar(SINCE.replace(tzinfo=None), pa.timestamp("s"))), pc.less_equal(table["format"], 1)))
    mine = table.filter(ours)
    pc.count(mine["status"])
    pc.max(mine["latency_ms"])
    scored = mine.filter(pc.equal(mine["status"], 200))
    rows = pc.list_flatten(pc.struct_field(scored["input"], "data"))
    sums = tuple(round(float(pc.sum(pc.list_element(rows, i)).as_py()), 3) for i in range(4))
    predictions = pc.list_flatten(pc.struct_field(scored["output"], "predictions"))
    counts = pc.value_counts(predictions).to_pylist()
    return scored.num_rows, sums, tuple(sorted((str(c["values"]), int(c["counts"])) for c in counts))


def pyarrow_local(files: list[Path]) -> Summary:
    import pyarrow.json as pj

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return arrow_summary(list(pool.map(lambda p: pj.read_json(p), files)))


def pyarrow_s3(store: Any, bucket: str, keys: list[str]) -> Summary:
    import pyarrow.fs as pfs
    import pyarrow.json as pj

    from tests.s3store import ACCESS_KEY, SECRET_KEY

    fs = pfs.S3FileSystem(access_key=ACCESS_KEY, secret_key=SECRET_KEY, endpoint_override=store.endpoint, scheme="http", region="us-east-1")

    def read(key: str) -> Any:
        with fs.open_input_stream(f"{bucket}/{key}", compression="gzip") as stream:
            return pj.read_json(stream)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return arrow_summary(list(pool.map(read, keys)))


def duckdb_s3(bucket: str, cache: Path, *, cold: bool) -> Summary:
    from gitops_ml.adapters import objectstore

    if cold:
        shutil.rmtree(cache, ignore_errors=True)
    location = objectstore.parse_location(f"s3://{bucket}/captures")
    objects = objectstore.list_objects(location, ["model=iris/version=1.0.0/"])
    return duckdb_summary(objectstore.download(location, objects, cache))


def measure(variants: list[tuple[str, str, Callable[[], Summary]]], runs: int) -> list[tuple[str, str, float, float, Summary]]:
    """Median wall and CPU seconds (all threads of this process) of each variant; runs alternate their
    order so that other load on the machine falls on every variant alike."""
    walls: dict[int, list[float]] = {i: [] for i in range(len(variants))}
    cpus: dict[int, list[float]] = {i: [] for i in range(len(variants))}
    results: dict[int, Summary] = {}
    for run in range(runs):
        order = list(range(len(variants)))
        for i in order if run % 2 == 0 else order[::-1]:
            wall, cpu = time.perf_counter(), time.process_time()
            results[i] = variants[i][2]()
            walls[i].append(time.perf_counter() - wall)
            cpus[i].append(time.process_time() - cpu)
    return [(where, engine, statistics.median(walls[i]), statistics.median(cpus[i]), results[i]) for i, (where, engine, _) in enumerate(variants)]


def end_to_end(root: Path, capture: Path) -> tuple[float, str]:
    from gitops_ml.monitor.service import MonitorRequest, run_monitor

    repo = root / "repo"
    shutil.copytree(ROOT / "examples" / "repo-layout", repo, ignore=shutil.ignore_patterns("deploy"))
    start = time.perf_counter()
    report = run_monitor(MonitorRequest(repo, "iris", "staging", str(capture), since=SINCE))
    return time.perf_counter() - start, f"{report.records.total} records, status {report.status.value}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--per-file", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import os

    from tests.s3store import start_seaweedfs

    with tempfile.TemporaryDirectory(prefix="gitops-ml-bench-") as scratch:
        root = Path(scratch)
        capture = root / "capture"
        start = time.perf_counter()
        files = generate(capture, args.records, args.per_file)
        size = sum(p.stat().st_size for p in files)
        print(f"{args.records:,} records in {len(files)} gzip files, {size / 1e6:.1f} MB, written in {time.perf_counter() - start:.1f} s")
        store = start_seaweedfs(root / "seaweedfs")
        try:
            os.environ.update(store.env())
            bucket = store.new_bucket()
            client = store.client()
            keys = []
            for path in files:
                key = "captures/" + path.relative_to(capture).as_posix()
                client.upload_file(str(path), bucket, key)
                keys.append(key)
            cache = root / "cache"
            duckdb_summary(files[:1]), pyarrow_local(files[:1])  # imports and first-use costs out of the figures
            rows = measure([
                ("local files", "DuckDB read_json (product path)", lambda: duckdb_summary(files)),
                ("local files", "pyarrow json.read_json x8 threads", lambda: pyarrow_local(files)),
                ("S3 (SeaweedFS)", "boto3 download + DuckDB, cold cache (product)", lambda: duckdb_s3(bucket, cache, cold=True)),
                ("S3 (SeaweedFS)", "boto3 + DuckDB, objects already cached", lambda: duckdb_s3(bucket, cache, cold=False)),
                ("S3 (SeaweedFS)", "pyarrow S3FileSystem + json.read_json x8", lambda: pyarrow_s3(store, bucket, keys)),
            ], args.runs)
            expected = rows[0][4]
            for where, engine, _, _, summary in rows:
                assert summary == expected, f"{where} {engine} disagrees: {summary} != {expected}"
            print(f"\nmedian of {args.runs} run(s), alternating order; every variant found {expected[0]:,} scored records and the same sums and classes")
            print("CPU = seconds of CPU of this process's threads (DuckDB's and pyarrow's included): steadier than wall time when the machine is shared\n")
            print(f"{'source':<16} {'engine':<48} {'wall s':>7} {'CPU s':>7} {'records/s':>10} {'wall vs':>8} {'CPU vs':>7}")
            for where, engine, wall, cpu, _ in rows:
                base = rows[0] if where == "local files" else rows[2]
                print(f"{where:<16} {engine:<48} {wall:>7.2f} {cpu:>7.2f} {args.records / wall:>10,.0f} {wall / base[2]:>7.2f}x {cpu / base[3]:>6.2f}x")
            seconds, what = end_to_end(root, capture)
            print(f"\nwhole `monitor` use case on the local files (repository, profile, read, drift statistics): {seconds:.1f} s ({what}); target: under 60 s")
        finally:
            store.stop()


if __name__ == "__main__":
    main()

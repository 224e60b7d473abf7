#!/usr/bin/env python3
"""Open Inference Protocol ("v2") benchmark: gitops-ml's /v2/models/iris/infer against KServe's V2 server
and Seldon's MLServer on the shared harness's iris model, in one run, with two load generators.

- wrk (as run.py) posts the same OIP JSON request to each server: 1 and 100 rows, 1/8/64 connections.
  Ours runs as in run.py: auth on, /metrics and prediction metrics on, access log on, capture off.
- Triton's perf_analyzer (setup.sh perf) drives each server as a Triton client does: it reads the
  model's metadata and /config, then sends tensors (JSON, and binary tensor data). A server it cannot
  drive is reported with perf_analyzer's own error (KServe's and MLServer's Python servers answer no
  /config, so it stops before the first request).

Servers are pinned to CPU 0, load generators to CPU 1. Owns the benchmark only.
Usage: python3 benchmarks/serving/protocols.py [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as bench  # noqa: E402 - the wrk benchmark's helpers (servers, cells, the shared harness)

KSERVE_PORT = 8003
MLSERVER_PORT = 8006
MODEL_SETTINGS = {
    "name": "iris",
    "implementation": "mlserver_sklearn.SKLearnModel",
    "parameters": {"uri": "./model.joblib", "version": "1.0.0"},
    "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
    "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1, 1]}],
}


@dataclasses.dataclass
class PerfCell:
    server: str
    tensors: str  # json or binary
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    error: str = ""


def oip_payloads(harness: Path, work: Path, name: str) -> dict[str, Path]:
    """OIP requests with the harness's 1 and 100 rows in one FP64 tensor called `name`."""
    out = {}
    for label in ("1", "100"):
        rows = json.loads((harness / "payloads" / f"instances_{label}.json").read_text())["instances"]
        body = {
            "inputs": [
                {"name": name, "shape": [len(rows), 4], "datatype": "FP64", "data": [x for row in rows for x in row]}
            ]
        }
        path = work / f"v2-{name}-{label}.json"
        path.write_text(json.dumps(body, separators=(",", ":")))
        out[label] = path
    return out


def perf_inputs(harness: Path, work: Path, name: str) -> dict[str, Path]:
    """perf_analyzer --input-data files: the same rows, as its JSON input format."""
    out = {}
    for label in ("1", "100"):
        rows = json.loads((harness / "payloads" / f"instances_{label}.json").read_text())["instances"]
        data = {"data": [{name: {"content": [x for row in rows for x in row], "shape": [len(rows), 4]}}]}
        path = work / f"perf-{name}-{label}.json"
        path.write_text(json.dumps(data))
        out[label] = path
    return out


def mlserver_dir(harness: Path, work: Path) -> Path:
    d = work / "mlserver"
    if d.exists():
        shutil.rmtree(d)
    (d / "iris").mkdir(parents=True)
    shutil.copy(harness / "model" / "model.joblib", d / "iris" / "model.joblib")
    (d / "iris" / "model-settings.json").write_text(json.dumps(MODEL_SETTINGS))
    # one process (no parallel inference workers) on one core, as the others; metrics on, as ours
    (d / "settings.json").write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "http_port": MLSERVER_PORT,
                "grpc_port": 8086,
                "metrics_port": 8096,
                "parallel_workers": 0,
            }
        )
    )
    return d


def servers(args: argparse.Namespace, work: Path) -> dict[str, bench.Server]:
    h, v = Path(args.harness), Path(args.venvs)
    exp = {k: h / "payloads" / f"expected_{k}.json" for k in ("1", "100")}
    plain, _, keys = bench.prepare_model_dirs(h, work)
    our_env = dict(bench.OUR_ENV, GITOPS_ML_KEYS_DIR=str(keys), GITOPS_ML_MODEL_DIR=str(plain))
    ours = f"http://127.0.0.1:{bench.OUR_PORT}"
    kserve = f"http://127.0.0.1:{KSERVE_PORT}"
    mlserver = f"http://127.0.0.1:{MLSERVER_PORT}"
    return {
        "ours-v2": bench.Server(
            "ours-v2",
            f"{args.our_python} -m gitops_ml.serving",
            ours + "/v2/models/iris/infer",
            ours + "/v2/models/iris/ready",
            oip_payloads(h, work, "data"),
            exp,
            cwd=bench.REPO,
            env=our_env,
            auth=f"Bearer {bench.API_KEY}",
        ),
        "ours-score": bench.Server(
            "ours-score",
            f"{args.our_python} -m gitops_ml.serving",
            ours + "/score",
            ours + "/readyz",
            bench.prepare_payloads(h, work),
            exp,
            cwd=bench.REPO,
            env=our_env,
            auth=f"Bearer {bench.API_KEY}",
        ),
        "kserve-v2": bench.Server(
            "kserve-v2",
            f"{v}/kserve/bin/python kserve_server.py --http_port {KSERVE_PORT} --workers 1 --enable_latency_logging false --enable_grpc false",
            kserve + "/v2/models/iris/infer",
            kserve + "/v2/models/iris/ready",
            oip_payloads(h, work, "input-0"),
            exp,
            cwd=h / "servers",
            env={"KSERVE_LOGLEVEL": "WARNING"},
        ),
        "mlserver": bench.Server(
            "mlserver",
            f"{v}/mlserver/bin/mlserver start .",
            mlserver + "/v2/models/iris/infer",
            mlserver + "/v2/models/iris/ready",
            oip_payloads(h, work, "input-0"),
            exp,
            cwd=mlserver_dir(h, work),
        ),
    }


def run_perf(
    perf: Path, s: bench.Server, inputs: Path, tensors: str, concurrency: int, args: argparse.Namespace, out: Path
) -> PerfCell:
    host = s.url.split("/")[2]
    cmd = [
        "taskset",
        "-c",
        str(args.client_cpu),
        str(perf),
        "-m",
        "iris",
        "-u",
        host,
        "-i",
        "http",
        "--input-data",
        str(inputs),
        "--concurrency-range",
        str(concurrency),
        "--measurement-interval",
        str(args.duration * 1000),
        "--stability-percentage",
        "50",
        "--max-trials",
        "10",
        "--input-tensor-format",
        tensors,
        "--output-tensor-format",
        tensors,
        "-f",
        str(out),
    ]
    if s.auth:
        cmd += ["-H", f"Authorization: {s.auth}"]
    ran = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration * 20 + 120)
    if ran.returncode != 0 or not out.is_file():
        said = [line.strip() for line in (ran.stdout + ran.stderr).splitlines() if line.strip()]
        error = next(
            (line for line in said if "error" in line.lower() or "failed" in line.lower()),
            said[-1] if said else f"exit {ran.returncode}",
        )
        return PerfCell(s.name, tensors, concurrency, 0.0, 0.0, 0.0, error[:160])
    with out.open() as f:
        row = next(csv.DictReader(f))
    return PerfCell(
        s.name,
        tensors,
        concurrency,
        float(row["Inferences/Second"]),
        float(row["p50 latency"]) / 1000,
        float(row["p99 latency"]) / 1000,
    )


def perf_server(
    rb: object, perf: Path, s: bench.Server, inputs: dict[str, Path], args: argparse.Namespace, log_dir: Path
) -> list[PerfCell]:
    env = dict(bench.QUIET, **s.env)
    ns = SimpleNamespace(
        cmd=s.cmd,
        cwd=str(s.cwd) if s.cwd else None,
        server_cpu=args.server_cpu,
        server_log=str(log_dir / f"{s.name}-perf.log"),
        env=[f"{k}={v}" for k, v in env.items()],
    )
    body = s.payloads["1"].read_bytes()
    expected = json.loads(s.expected["1"].read_text())
    p, t0 = rb.start_server(ns)  # type: ignore[attr-defined]
    cells = []
    try:
        bench.wait_cold(rb, s, p, t0, body, expected, args.start_timeout)  # type: ignore[arg-type]
        for tensors in ("json", "binary"):
            for c in args.perf_concurrency:
                cell = run_perf(perf, s, inputs["1"], tensors, c, args, log_dir / f"{s.name}-{tensors}-{c}.csv")
                shown = cell.error or f"{cell.rps:8.0f} infer/s  p50 {cell.p50_ms:6.2f} ms  p99 {cell.p99_ms:6.2f} ms"
                print(f"  perf_analyzer {s.name:10} {tensors:6} c={c:<3} {shown}", flush=True)
                cells.append(cell)
                if cell.error:
                    return cells  # it stops before the first request: the other cells would say the same
    finally:
        rb.stop_server(p)  # type: ignore[attr-defined]
    return cells


def cpu_us(cell: bench.Cell) -> float:
    """Server CPU µs per answered request (what the server spends, whatever else ran on the machine)."""
    return cell.server_cpu_pct / 100 * 1e6 / cell.rps if cell.rps else 0.0


def render(wrk: list[bench.Cell], perf: list[PerfCell], args: argparse.Namespace) -> str:
    out = [
        f"Open Inference Protocol benchmark, {args.passes} pass(es) ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {bench.code_version()})",
        "",
        "wrk, the same OIP JSON request to each (1 row / 100 rows):",
        "",
        "| server | rows | conns | rps | p50 ms | p99 ms | non-2xx | server CPU µs / request | foreign load on its CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    out += [
        f"| {c.server} | {c.payload} | {c.connections} | {c.rps:.0f} | {c.p50_ms:.2f} | {c.p99_ms:.2f} | {c.non2xx} "
        f"| {cpu_us(c):.0f} | {c.foreign_cpu0_pct:.0f} % |"
        for c in wrk
    ]
    out += [
        "",
        "perf_analyzer (Triton's client; 1 row per request):",
        "",
        "| server | tensors | concurrency | infer/s | p50 ms | p99 ms |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    out += [
        f"| {c.server} | {c.tensors} | {c.concurrency} | "
        + (f"not driven: {c.error} | | |" if c.error else f"{c.rps:.0f} | {c.p50_ms:.2f} | {c.p99_ms:.2f} |")
        for c in perf
    ]
    by = {(c.server, c.payload, c.connections): c for c in wrk}
    out += ["", "Targets at 8 connections (wrk, OIP):", ""]
    for label in ("1", "100"):
        ours = by.get(("ours-v2", label, 8))
        for other, factor in (("kserve-v2", 2.0), ("mlserver", 1.0)):
            theirs = by.get((other, label, 8))
            if ours and theirs and theirs.rps:
                ratio = ours.rps / theirs.rps
                by_cpu = cpu_us(theirs) / cpu_us(ours) if cpu_us(ours) else 0.0
                verdict = "met" if ratio >= factor else "missed"
                out.append(
                    f"- {label} row(s): server CPU per request, {other} / ours-v2 = {by_cpu:.2f}x (the ratio a shared machine distorts least)"
                )
                out.append(
                    f"- {label} row(s): ours-v2 / {other} = {ratio:.2f}x (target {'>=' if factor > 1 else '>'} {factor:g}x: {verdict})"
                )
        score = by.get(("ours-score", label, 8))
        if ours and score and score.rps:
            out.append(
                f"- {label} row(s): ours-v2 / ours-score = {ours.rps / score.rps:.2f}x (the protocol's cost over /score)"
            )
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="8 connections only, 1 s warm-up + 4 s cells, no cold-start cycles"
    )
    ap.add_argument("--servers", default="ours-v2,ours-score,kserve-v2,mlserver")
    ap.add_argument("--harness", default=bench.DEFAULT_HARNESS)
    ap.add_argument("--venvs", default=bench.DEFAULT_VENVS)
    ap.add_argument("--work", default=bench.DEFAULT_WORK + "-protocols")
    ap.add_argument("--our-python", default=str(bench.REPO / ".venv" / "bin" / "python"))
    ap.add_argument("--connections", default=None, help="wrk connections (1,8,64; quick 8)")
    ap.add_argument("--perf-concurrency", default=None, help="perf_analyzer concurrency (1,8,64; quick 8)")
    ap.add_argument("--duration", type=int, default=None, help="seconds per cell (10; quick 4)")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--start-timeout", type=float, default=180)
    ap.add_argument(
        "--passes",
        type=int,
        default=1,
        help="wrk cells this many times (alternating order); each shows the median-rps run",
    )
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    args.connections = [int(x) for x in (args.connections or ("8" if args.quick else "1,8,64")).split(",")]
    args.perf_concurrency = [int(x) for x in (args.perf_concurrency or ("8" if args.quick else "1,8,64")).split(",")]
    args.duration = args.duration or (4 if args.quick else 10)
    args.warmup = 1 if args.quick else 3
    args.cold_repeats = 0 if args.quick else 1
    perf = Path(args.venvs) / "perf" / "perf_analyzer"
    for needed, how in (
        (shutil.which("wrk"), "apt-get install -y wrk"),
        (perf.is_file() or None, "bash benchmarks/serving/setup.sh perf"),
    ):
        if needed is None:
            sys.exit(f"error: missing load generator; run {how}")
    rb = bench.load_harness(Path(args.harness))
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    os.sched_setaffinity(0, {args.client_cpu})
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log_dir = work / f"logs-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
    log_dir.mkdir()
    table = servers(args, work)
    wrk_cells: list[bench.Cell] = []
    perf_cells: list[PerfCell] = []
    h = Path(args.harness)
    names = args.servers.split(",")
    for n_pass in range(args.passes):
        # odd passes run the servers in reverse order, so a drift of the shared machine hits all of them alike
        for name in names if n_pass % 2 == 0 else names[::-1]:
            s = table[name]
            print(f"=== pass {n_pass + 1}/{args.passes} {name} {time.strftime('%H:%M:%S')}", flush=True)
            try:
                cells, _ = bench.bench_server(rb, s, args, log_dir)
                wrk_cells += cells
                if name != "ours-score" and n_pass == 0:  # perf_analyzer once: it repeats until stable itself
                    inputs = perf_inputs(h, work, "data" if name == "ours-v2" else "input-0")
                    perf_cells += perf_server(rb, perf, s, inputs, args, log_dir)
            except Exception as exc:  # one broken server must not lose the others' figures
                print(f"  FAILED {name}: {exc} (logs in {log_dir})", flush=True)
    wrk_cells, _ = bench.median_cells(wrk_cells)
    report = render(wrk_cells, perf_cells, args)
    print("\n" + report)
    if args.out:
        Path(args.out).write_text(report)


if __name__ == "__main__":
    main()

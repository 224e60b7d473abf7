#!/usr/bin/env python3
"""Profile one benchmarked server under load: where does its core go per request?

Starts the server as run.py does (pinned to CPU 0), loads it with wrk from CPU 1 for a bounded time,
samples it with py-spy (from the `tools` venv of setup.sh) and prints self and inclusive time by
function and by layer (HTTP stack, framework, our serving code, JSON, NumPy, scikit-learn, logging...).
Reads and measures only; the raw collapsed stacks are kept next to the report for flame graphs.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import run as bench  # benchmarks/serving/run.py: same servers, payloads and helpers

# First match wins, checked against the file path and function name of a frame (innermost first).
LAYERS = (
    ("sklearn", ("sklearn/",)),
    ("numpy", ("numpy/",)),
    ("pandas", ("pandas/",)),
    ("json (stdlib/orjson)", ("json/", "orjson")),
    ("logging", ("logging/",)),
    ("prometheus_client", ("prometheus_client/",)),
    ("gitops_ml.serving", ("gitops_ml/serving/",)),
    ("gitops_ml (other)", ("gitops_ml/",)),
    ("starlette", ("starlette/",)),
    ("fastapi/pydantic", ("fastapi/", "pydantic")),
    ("kserve", ("kserve/",)),
    ("uvicorn", ("uvicorn/",)),
    ("h11/httptools", ("h11/", "httptools")),
    ("anyio/threads", ("anyio/", "threading.py", "concurrent/futures")),
    ("asyncio event loop", ("asyncio/", "uvloop", "selectors.py")),
)


def layer_of(frame: str) -> str:
    for name, needles in LAYERS:
        if any(n in frame for n in needles):
            return name
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("server", help="a server name of run.py, e.g. ours, ours-batch, baseline")
    ap.add_argument("--payload", default="1")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--all-threads", action="store_true",
                    help="sample every thread (default: only the one holding the GIL, i.e. what uses the core)")
    for flag, default in (("--harness", bench.DEFAULT_HARNESS), ("--venvs", bench.DEFAULT_VENVS),
                          ("--work", bench.DEFAULT_WORK), ("--our-python", str(bench.REPO / ".venv/bin/python")),
                          ("--our-cmd", "{python} -m gitops_ml.serving")):
        ap.add_argument(flag, default=default)
    ap.add_argument("--our-env", action="append", default=[])
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    args = ap.parse_args()
    pyspy = Path(args.venvs) / "tools" / "bin" / "py-spy"
    if not pyspy.exists():
        sys.exit(f"error: {pyspy} missing; run: bash benchmarks/serving/setup.sh tools")
    rb = bench.load_harness(Path(args.harness))
    os.sched_setaffinity(0, {args.client_cpu})
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    s = bench.server_table(args, work)[args.server]
    out_dir = work / f"profile-{args.server}-{args.payload}r-c{args.connections}-{time.strftime('%H%M%S')}"
    out_dir.mkdir()
    from types import SimpleNamespace

    ns = SimpleNamespace(cmd=s.cmd, cwd=str(s.cwd) if s.cwd else None, server_cpu=args.server_cpu,
                         server_log=str(out_dir / "server.log"),
                         env=[f"{k}={v}" for k, v in dict(bench.QUIET, **s.env).items()])
    body = s.payloads[args.payload].read_bytes()
    expected = json.loads(s.expected[args.payload].read_text())
    p, t0 = rb.start_server(ns)
    try:
        bench.wait_cold(rb, s, p, t0, body, expected, 120)
        bench.run_wrk(s, s.payloads[args.payload], args.connections, 2, args.client_cpu)  # warm-up
        # py-spy follows the worker even when the command is a wrapper (mlflow, bentoml).
        raw = out_dir / "stacks.txt"
        spy = subprocess.Popen(
            ["taskset", "-c", str(args.client_cpu), str(pyspy), "record", "--pid", str(p.pid), "--subprocesses",
             "--rate", str(args.rate), "--duration", str(args.seconds), "--format", "raw", "--nonblocking",
             "-o", str(raw)] + ([] if args.all_threads else ["--gil"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)
        w = bench.run_wrk(s, s.payloads[args.payload], args.connections, args.seconds - 1, args.client_cpu)
        spy.wait(timeout=args.seconds + 60)
    finally:
        rb.stop_server(p)
    requests = w["requests"]
    rps = (requests - w["non2xx"]) / (w["duration_us"] / 1e6)
    self_t: collections.Counter[str] = collections.Counter()
    incl_t: collections.Counter[str] = collections.Counter()
    layer_t: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        count = int(n)
        frames = [f for f in stack.split(";") if not f.startswith("process ") and not f.startswith("thread ")]
        if not frames:
            continue
        total += count
        self_t[frames[-1]] += count
        for f in set(frames):
            incl_t[f] += count
        # the layer of a sample: innermost frame that is not in "other" (C builtins fall to their caller)
        for f in reversed(frames):
            name = layer_of(f)
            if name != "other":
                layer_t[name] += count
                break
        else:
            layer_t["other"] += count
    lines = [f"# profile of {args.server}: {args.payload} row(s), c={args.connections}, {args.seconds} s, "
             f"{rps:.0f} rps under py-spy ({requests} requests, {w['non2xx']} non-2xx), {total} samples", ""]
    lines.append("## samples by layer (innermost recognised frame)")
    for name, n in layer_t.most_common():
        lines.append(f"{100 * n / total:6.1f} %  {name}")
    lines += ["", f"## top {args.top} self time"]
    for f, n in self_t.most_common(args.top):
        lines.append(f"{100 * n / total:6.1f} %  {f}")
    lines += ["", f"## top {args.top} inclusive time, gitops_ml and framework frames"]
    shown = [(f, n) for f, n in incl_t.most_common() if "gitops_ml/" in f or "starlette/" in f or "uvicorn/" in f]
    for f, n in shown[:args.top]:
        lines.append(f"{100 * n / total:6.1f} %  {f}")
    report = "\n".join(lines) + "\n"
    (out_dir / "report.txt").write_text(report)
    print(report)
    print(f"raw stacks and server log in {out_dir}")


if __name__ == "__main__":
    main()

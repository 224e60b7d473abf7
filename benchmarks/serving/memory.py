#!/usr/bin/env python3
"""Memory and liveness under concurrent max-size bodies (issue 10, item 3).

For each count N (default 1, 4, 10, 44: 44 is the example prod deployment's capacity, 4 running + 40
queued), starts a fresh `python -m gitops_ml.serving` configured as the rendered ConfigMap would, sends N
valid ~9.4 MB bodies at once, each on its own connection, and prints: the answers by status, the
server's peak RSS (VmHWM) against the pod's memory limit, and the latency of /healthz probes made on
new connections (as the kubelet makes them) every 0.2 s meanwhile.
`--pythonpath DIR` runs another source tree of gitops_ml (e.g. an older commit from `git archive`)
with the same interpreter, so before and after print side by side from one script.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCORE_PY = "def run(data):\n    return {'rows': int(data.shape[0]), 'sum': float(data[:, 0].sum())}\n"
SCHEMA = (
    '{"type": "object", "additionalProperties": false, "required": ["data"], "properties": {"data": {"type": "array", '
    '"minItems": 1, "items": {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}}, '
    '"x-gitops-ml": {"kind": "ndarray", "dtype": "float64", "shape": [null, 4]}}}}'
)
ROW = b"[5.1,3.5,1.4,0.2]"
PROBE_TIMEOUT = 2.0  # the rendered liveness probe's timeoutSeconds


@dataclass
class Outcome:
    count: int
    statuses: dict[str, int]
    baseline_mib: float
    peak_mib: float
    probes: list[float] = field(default_factory=list)  # seconds; inf for a probe that failed
    seconds: float = 0.0


def make_body(size: int) -> bytes:
    rows = (size - 12) // (len(ROW) + 1)
    return b'{"data": [' + b",".join([ROW] * rows) + b"]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def request(port: int, head: bytes, body: bytes, timeout: float) -> str:
    """One request on a new connection: the status, or the name of what went wrong."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(head + body)
            got = b""
            while b"\r\n" not in got:
                data = sock.recv(65536)
                if not data:
                    return "closed"
                got += data
            return got.split(b" ", 2)[1].decode()
    except OSError as exc:
        return type(exc).__name__


def wait_ready(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        if request(port, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", b"", 2) == "200":
            return
        time.sleep(0.05)
    raise SystemExit("the server did not get ready")


def measure(args: argparse.Namespace, count: int, body: bytes, model: Path) -> Outcome:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_ML_")}
    env.update(
        GITOPS_ML_MODEL_NAME="mem", GITOPS_ML_MODEL_VERSION="1.0.0", GITOPS_ML_AUTH_ENABLED="false",
        GITOPS_ML_MAX_CONCURRENT=str(args.max_concurrent), GITOPS_ML_QUEUE_SIZE=str(args.queue_size),
        GITOPS_ML_MAX_BODY_BYTES=str(args.max_body), GITOPS_ML_QUEUE_TIMEOUT="60", GITOPS_ML_REQUEST_TIMEOUT="60",
        GITOPS_ML_ACCESS_LOG="false",
    )
    for pair in args.env:
        key, _, value = pair.partition("=")
        env[key] = value
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    command = [args.python, "-m", "gitops_ml.serving", "--model-dir", str(model), "--host", "127.0.0.1", "--port", str(port)]
    log = open(Path(args.work) / f"server-{count}.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, env=env, stdout=log, stderr=log, cwd=args.work)
    try:
        wait_ready(port, process, 120)
        baseline = status_kib(process.pid, "VmRSS")
        head = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        statuses: dict[str, int] = {}
        probes: list[float] = []
        done = threading.Event()

        def probe() -> None:
            while not done.is_set():
                started = time.monotonic()
                got = request(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"", 30)
                probes.append(time.monotonic() - started if got == "200" else float("inf"))
                done.wait(0.2)

        gate = threading.Barrier(count)

        def client() -> None:
            gate.wait()
            got = request(port, head, body, 300)
            statuses[got] = statuses.get(got, 0) + 1

        prober = threading.Thread(target=probe)
        clients = [threading.Thread(target=client) for _ in range(count)]
        started = time.monotonic()
        prober.start()
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        seconds = time.monotonic() - started
        done.set()
        prober.join()
        peak = status_kib(process.pid, "VmHWM")
        return Outcome(count, dict(sorted(statuses.items())), baseline / 1024, peak / 1024, probes, seconds)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="1,4,10,44", help="concurrent max-size bodies per run")
    ap.add_argument("--body-mb", type=float, default=9.4, help="size of each valid body, MB (10^6 bytes)")
    ap.add_argument("--max-body", type=int, default=10 * 1024 * 1024, help="GITOPS_ML_MAX_BODY_BYTES")
    ap.add_argument("--max-concurrent", type=int, default=4)
    ap.add_argument("--queue-size", type=int, default=40)
    ap.add_argument("--limit-mib", type=float, default=1024, help="the pod's memory limit to compare with")
    ap.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"))
    ap.add_argument("--pythonpath", default="", help="source tree of gitops_ml to run instead of the installed one")
    ap.add_argument("--env", action="append", default=[], help="K=V for the server (repeatable)")
    ap.add_argument("--work", default="", help="scratch folder (model directory, server logs)")
    ap.add_argument("--label", default="", help="a name for this tree in the table")
    args = ap.parse_args()
    args.work = args.work or tempfile.mkdtemp(prefix="gitops-ml-memory-")
    model = Path(args.work) / "model"
    model.mkdir(parents=True, exist_ok=True)
    (model / "score.py").write_text(SCORE_PY)
    (model / "schema.json").write_text(SCHEMA)
    (model / "sample.json").write_text('{"data": [[5.1, 3.5, 1.4, 0.2]]}')
    body = make_body(int(args.body_mb * 1e6))
    label = args.label or (args.pythonpath or "installed")
    print(f"tree: {label}; body {len(body) / 1e6:.2f} MB ({len(body) // (len(ROW) + 1)} rows); capacity "
          f"{args.max_concurrent} running + {args.queue_size} queued; pod limit {args.limit_mib:g} MiB; load "
          f"{os.getloadavg()[0]:.2f} before")
    print()
    print("| bodies | answers | RSS at ready MiB | peak RSS MiB | peak / limit | /healthz p50 ms | max ms | over 2 s | failed | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for count in (int(c) for c in args.counts.split(",")):
        out = measure(args, count, body, model)
        ok = [p for p in out.probes if p != float("inf")]
        answers = ", ".join(f"{n}× {s}" for s, n in out.statuses.items())
        p50 = statistics.median(ok) * 1000 if ok else float("nan")
        worst = max(out.probes) * 1000 if out.probes else float("nan")
        slow = sum(1 for p in out.probes if p > PROBE_TIMEOUT)
        failed = sum(1 for p in out.probes if p == float("inf"))
        print(f"| {count} | {answers} | {out.baseline_mib:.0f} | {out.peak_mib:.0f} | {out.peak_mib / args.limit_mib:.2f} | "
              f"{p50:.1f} | {worst:.0f} | {slow}/{len(out.probes)} | {failed} | {out.seconds:.1f} |", flush=True)
    print(f"\nload {os.getloadavg()[0]:.2f} after; server logs in {args.work}")


if __name__ == "__main__":
    sys.exit(main())

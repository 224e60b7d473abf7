#!/usr/bin/env python3
"""New connections during a connection burst (issue 10, item 7).

Starts `python -m gitops_ml.serving` (optionally under a file-descriptor limit, as `ulimit -n` sets it),
then for each scenario opens N connections at once from one asyncio client: `idle` (connect, send
nothing, hold), `score` (one 1-row scoring request each, then hold) or `upload` (one ~850 KB scoring
body each). Meanwhile a prober opens a new connection every 50 ms and asks /healthz, as the kubelet
does; the table gives the probes' latency (median, max) and failures, and how the burst fared.
`--pythonpath DIR` runs another source tree (e.g. an older commit from `git archive`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCORE_PY = "def run(data):\n    return {'rows': int(data.shape[0])}\n"
SCHEMA = (
    '{"type": "object", "required": ["data"], "properties": {"data": {"type": "array", '
    '"x-gitops-ml": {"kind": "ndarray", "dtype": "float64", "shape": [null, 4]}}}}'
)
ROW = b"[5.1,3.5,1.4,0.2]"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scoring_request(rows: int) -> bytes:
    body = b'{"data": [' + b",".join([ROW] * rows) + b"]}"
    return b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def probe(port: int, timeout: float = 10.0) -> float:
    started = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            if not sock.recv(1024).startswith(b"HTTP/1.1 200"):
                return float("inf")
    except OSError:
        return float("inf")
    return time.monotonic() - started


async def burst(port: int, count: int, request: bytes, hold: float) -> tuple[int, int]:
    """(connections that got an answer or stayed open, connections that failed)."""

    async def one() -> bool:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
        except (OSError, asyncio.TimeoutError):
            return False
        try:
            if request:
                writer.write(request)
                await writer.drain()
                if not (await asyncio.wait_for(reader.read(64), 60)).startswith(b"HTTP/1.1 "):
                    return False
            await asyncio.sleep(hold)
            return True
        except (OSError, asyncio.TimeoutError):
            return False
        finally:
            writer.close()

    results = await asyncio.gather(*(one() for _ in range(count)))
    return sum(results), len(results) - sum(results)


def run(args: argparse.Namespace, scenario: str, count: int, model: Path) -> str:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_ML_")}
    env.update(GITOPS_ML_AUTH_ENABLED="false", GITOPS_ML_ACCESS_LOG="false", GITOPS_ML_QUEUE_SIZE="64", GITOPS_ML_MAX_CONCURRENT="1")
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath

    def limit() -> None:
        if args.fd_limit:
            resource.setrlimit(resource.RLIMIT_NOFILE, (args.fd_limit, args.fd_limit))

    log = open(Path(args.work) / f"server-{scenario}-{count}.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([args.python, "-m", "gitops_ml.serving", "--model-dir", str(model), "--host", "127.0.0.1", "--port", str(port), *args.server_arg],
                               env=env, stdout=log, stderr=log, cwd=args.work, preexec_fn=limit)
    try:
        deadline = time.monotonic() + 120
        while probe(port, 2) == float("inf"):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.05)
        request = {"idle": b"", "score": scoring_request(1), "upload": scoring_request(50_000)}[scenario]
        probes: list[float] = []
        done = threading.Event()

        def prober() -> None:
            while not done.is_set():
                probes.append(probe(port))
                done.wait(0.05)

        thread = threading.Thread(target=prober)
        thread.start()
        started = time.monotonic()
        ok, failed = asyncio.run(burst(port, count, request, args.hold))
        seconds = time.monotonic() - started
        done.set()
        thread.join()
        good = [p for p in probes if p != float("inf")]
        p50 = statistics.median(good) * 1000 if good else float("nan")
        worst = max(probes) * 1000 if probes else float("nan")
        lost = len(probes) - len(good)
        return f"| {scenario} | {count} | {ok} / {failed} | {seconds:.1f} | {p50:.1f} | {worst:.0f} | {lost}/{len(probes)} |"
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
    ap.add_argument("--scenarios", default="idle:440,score:440,upload:440,idle:1500", help="scenario:count, comma-separated")
    ap.add_argument("--fd-limit", type=int, default=0, help="RLIMIT_NOFILE of the server (0: inherited)")
    ap.add_argument("--hold", type=float, default=3.0, help="seconds each burst connection stays open")
    ap.add_argument("--python", default=str(REPO / ".venv" / "bin" / "python"))
    ap.add_argument("--pythonpath", default="", help="source tree of gitops_ml to run instead of the installed one")
    ap.add_argument("--server-arg", action="append", default=[], help="extra argument of the server, e.g. --loop=asyncio (repeatable)")
    ap.add_argument("--work", default="")
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:  # this client holds as many connections as the bursts
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    args.work = args.work or tempfile.mkdtemp(prefix="gitops-ml-connections-")
    model = Path(args.work) / "model"
    model.mkdir(parents=True, exist_ok=True)
    (model / "score.py").write_text(SCORE_PY)
    (model / "schema.json").write_text(SCHEMA)
    print(f"tree: {args.label or args.pythonpath or 'installed'}; server fd limit {args.fd_limit or 'inherited'}; "
          f"load {os.getloadavg()[0]:.2f} before\n")
    print("| burst | connections | held or answered / failed | seconds | new-connection /healthz p50 ms | max ms | failed probes |")
    print("|---|---|---|---|---|---|---|")
    for item in args.scenarios.split(","):
        scenario, _, count = item.partition(":")
        print(run(args, scenario, int(count), model), flush=True)
    print(f"\nload {os.getloadavg()[0]:.2f} after; server logs in {args.work}")


if __name__ == "__main__":
    sys.exit(main())

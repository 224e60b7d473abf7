#!/usr/bin/env python3
"""The floor of a Python gRPC ModelInfer: what grpc.aio costs per unary call with nothing behind it
(raw-bytes handler, no protobuf parse, no keys, no model), in server CPU µs per request. Measured to
decide whether a GRPCInferenceService beside the REST routes would be a faster path (issue 17).

Needs grpcio (KServe's venv from setup.sh has it), not the project's venv:
  /tmp/gitops-ml-bench/venvs/kserve/bin/python benchmarks/serving/grpc_floor.py [--concurrency 8] [--seconds 5]
The server is pinned to CPU 0, the client's threads to CPU 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import threading
import time

PORT = 8090
METHOD = "/inference.GRPCInferenceService/ModelInfer"


def serve() -> None:
    import grpc  # noqa: PLC0415

    async def infer(request: bytes, context: object) -> bytes:
        return request

    async def main() -> None:
        server = grpc.aio.server()
        handler = grpc.method_handlers_generic_handler(
            "inference.GRPCInferenceService", {"ModelInfer": grpc.unary_unary_rpc_method_handler(infer)}
        )
        server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port(f"127.0.0.1:{PORT}")
        await server.start()
        await server.wait_for_termination()

    asyncio.run(main())


def load(concurrency: int, seconds: float) -> float:
    import grpc  # noqa: PLC0415

    call = grpc.insecure_channel(f"127.0.0.1:{PORT}").unary_unary(METHOD)
    payload = b"x" * 120  # about a one-row OIP request
    call(payload, wait_for_ready=True)
    done = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        count = 0
        while time.monotonic() < stop:
            call(payload)
            count += 1
        with lock:
            done[0] += count

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done[0] / seconds


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve()
        return
    server = subprocess.Popen(["taskset", "-c", "0", sys.executable, __file__, "--serve"])
    try:
        os.sched_setaffinity(0, {1})
        load(1, 1.0)  # warm-up (and waits for the server)
        before = cpu_seconds(server.pid)
        rps = load(args.concurrency, args.seconds)
        used = cpu_seconds(server.pid) - before
        print(
            f"grpc.aio unary floor: {rps:.0f} rps at {args.concurrency} concurrent, {used * 1e6 / (rps * args.seconds):.0f} server CPU µs / request"
        )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()

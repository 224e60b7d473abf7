#!/usr/bin/env python3
"""In-process cost of our scoring path: CPU µs per request through the ASGI app, and per step.

No sockets, no HTTP parser: requests go straight into `ScoringApp` as ASGI calls, so the figures
are the server's own cost above uvicorn, stable even on a busy machine (CPU time, not wall time).
Variants switch one thing at a time (auth, access log, worker thread, batching) to price each.
Measures only; run it with the project venv: .venv/bin/python benchmarks/serving/microbench.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import timeit
from pathlib import Path
from typing import Any, Callable

import orjson
import run as bench  # benchmarks/serving/run.py: model directory and payload preparation

from gitops_ml.serving import scoring  # noqa: E402  (the project venv provides it)
from gitops_ml.serving.app import ScoringApp
from gitops_ml.serving.predictions import OutputDeclaration, Predictions
from gitops_ml.serving.settings import ServerSettings
from gitops_ml.serving.telemetry import _now

# run.py's server runs with per-version prediction metrics on (GITOPS_ML_PREDICTION_METRICS)
PREDICTIONS = {"prediction_metrics": bench.OUR_ENV["GITOPS_ML_PREDICTION_METRICS"], "environment": bench.OUR_ENV["GITOPS_ML_ENVIRONMENT"]}


def make_app(model_dir: Path, keys: Path, sink: Any, **overrides: Any) -> ScoringApp:
    settings = ServerSettings(model_name="iris", model_version="1.0.0", model_dir=str(model_dir),
                              host="127.0.0.1", keys_dir=str(keys), queue_size=256, **overrides)
    return ScoringApp(settings, access_stream=sink)


async def start(app: ScoringApp) -> asyncio.Task[None]:
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})

    async def send(message: dict[str, Any]) -> None:
        pass

    task = asyncio.create_task(app({"type": "lifespan"}, inbox.get, send))
    deadline = time.monotonic() + 60
    while not app.ready:
        if time.monotonic() > deadline or app.init_error:
            raise RuntimeError(f"app not ready: {app.init_error}")
        await asyncio.sleep(0.005)
    return task


def request_scope(body: bytes, key: str, path: str = "/score") -> tuple[dict[str, Any], Callable[[], Any]]:
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if key:
        headers.append((b"authorization", b"Bearer " + key.encode()))
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers,
             "http_version": "1.1", "scheme": "http", "query_string": b"", "root_path": ""}
    message = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    return scope, receive


async def drive(app: ScoringApp, body: bytes, key: str, total: int, concurrency: int, path: str = "/score") -> tuple[float, float, int]:
    """(CPU µs per request, wall µs per request, non-200 answers) for `total` requests."""
    scope, receive = request_scope(body, key, path)
    bad = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal bad
        if message["type"] == "http.response.start" and message["status"] != 200:
            bad += 1

    async def client(n: int) -> None:
        for _ in range(n):
            await app(scope, receive, send)

    per = total // concurrency
    c0, w0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client(per) for _ in range(concurrency)))
    c1, w1 = time.process_time(), time.perf_counter()
    n = per * concurrency
    return 1e6 * (c1 - c0) / n, 1e6 * (w1 - w0) / n, bad


def patch_inline() -> Callable[[], None]:
    """What if run() were called on the event loop, without the worker thread? (pricing the handoff)"""
    original = scoring.Scorer.submit

    def submit(self: Any, data: Any, request_id: str) -> Any:
        future = self.loop.create_future()
        job = scoring.Job(data, request_id, future, time.monotonic())
        future.set_result(self._run_one(job))
        return job

    scoring.Scorer.submit = submit  # type: ignore[method-assign]

    def undo() -> None:
        scoring.Scorer.submit = original  # type: ignore[method-assign]

    return undo


def patch_coalesce() -> Callable[[], None]:
    """What if workers handed results back through one loop wake-up per burst, not one per request?"""
    import threading

    class CoalescingLoop:
        def __init__(self, loop: Any) -> None:
            self._loop, self._items, self._scheduled, self._lock = loop, [], False, threading.Lock()

        def __getattr__(self, name: str) -> Any:
            return getattr(self._loop, name)

        def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> None:
            with self._lock:
                self._items.append((fn, args))
                if self._scheduled:
                    return
                self._scheduled = True
            self._loop.call_soon_threadsafe(self._drain)

        def _drain(self) -> None:
            with self._lock:
                items, self._items, self._scheduled = self._items, [], False
            for fn, args in items:
                fn(*args)

    original = scoring.Scorer.__init__

    def init(self: Any, run: Any, limits: Any, metrics: Any, loop: Any) -> None:
        original(self, run, limits, metrics, CoalescingLoop(loop))

    scoring.Scorer.__init__ = init  # type: ignore[method-assign]

    def undo() -> None:
        scoring.Scorer.__init__ = original  # type: ignore[method-assign]

    return undo


async def variants(args: argparse.Namespace, plain: Path, batch: Path, keys: Path, bodies: dict[str, bytes]) -> list[str]:
    sink = open(os.devnull, "wb")
    rows = []
    # the inference protocols: the same rows as an OIP tensor and as KServe V1 instances
    protocols = {
        "/v2/models/iris/infer": {k: orjson.dumps({"inputs": [{"name": "data", "datatype": "FP64", "shape": [len(rows), 4], "data": [x for r in rows for x in r]}]})
                                  for k, rows in ((k, orjson.loads(b)["data"]) for k, b in bodies.items())},
        "/v1/models/iris:predict": {k: orjson.dumps({"instances": orjson.loads(b)["data"]}) for k, b in bodies.items()},
    }
    cases: list[tuple[str, Path, dict[str, Any], str, Callable[[], Callable[[], None]] | None]] = [
        ("as benchmarked: auth + access log + worker thread + prediction metrics", plain, PREDICTIONS, bench.API_KEY, None),
        ("no prediction metrics (no output declared)", plain, {}, bench.API_KEY, None),
        ("no access log", plain, {"access_log": False}, bench.API_KEY, None),
        ("no auth", plain, {"auth_enabled": False}, "", None),
        ("no auth, no access log", plain, {"auth_enabled": False, "access_log": False}, "", None),
        ("run() inline on the loop (no worker thread)", plain, {}, bench.API_KEY, patch_inline),
        ("worker thread, one loop wake-up per burst of results", plain, {}, bench.API_KEY, patch_coalesce),
        ("batching (max 64, 2 ms)", batch, {"batch_enabled": True, "batch_max_size": 64}, bench.API_KEY, None),
        ("as benchmarked, Open Inference Protocol /v2/models/iris/infer (JSON tensor)", plain, PREDICTIONS, bench.API_KEY, None),
        ("as benchmarked, KServe V1 /v1/models/iris:predict (instances)", plain, PREDICTIONS, bench.API_KEY, None),
    ]
    for label, model_dir, overrides, key, patch in cases:
        if args.only and args.only not in label:
            continue
        undo = patch() if patch else None
        try:
            app = make_app(model_dir, keys, sink, **overrides)
            task = await start(app)
            path = next((p for p in protocols if p in label), "/score")
            for payload, body in (protocols[path] if path in protocols else bodies).items():
                for conc in args.concurrency:
                    await drive(app, body, key, min(args.requests, 500), conc, path)  # warm-up
                    results = [await drive(app, body, key, args.requests, conc, path) for _ in range(args.repeats)]
                    cpu = sorted(r[0] for r in results)[len(results) // 2]
                    wall = sorted(r[1] for r in results)[len(results) // 2]
                    bad = sum(r[2] for r in results)
                    rows.append(f"| {label} | {payload} | {conc} | {cpu:.0f} | {wall:.0f} |"
                                + (f" ⚠ {bad} non-200 |" if bad else " |"))
                    print(rows[-1], flush=True)
            app.begin_drain()
            await app._stop()
            task.cancel()
        finally:
            if undo:
                undo()
    return rows


def steps(plain: Path, keys: Path, bodies: dict[str, bytes]) -> list[str]:
    """Per-step CPU µs of the pieces the scoring path calls (timeit, best of 5)."""
    sink = open(os.devnull, "wb")
    app = make_app(plain, keys, sink)
    model = __import__("joblib").load(plain / "model.joblib")
    out = []

    def t(label: str, fn: Callable[[], Any], number: int = 2000) -> None:
        best = min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6
        out.append(f"| {label} | {best:.1f} |")
        print(out[-1], flush=True)

    key = bench.API_KEY.encode()
    t("KeyStore.check (1 key of 2 matches, incl. reload check)", lambda: app.keys.check(key))
    counted = Predictions(OutputDeclaration.from_json(PREDICTIONS["prediction_metrics"]) or OutputDeclaration("class", "predictions"))
    for rows_in_answer in (1, 100):
        answer = orjson.dumps({"predictions": [n % 3 for n in range(rows_in_answer)]})
        t(f"Predictions.observe (an answer of {rows_in_answer} class(es))", lambda answer=answer: counted.observe(answer))
    for payload, body in bodies.items():
        parsed = orjson.loads(body)
        decoded = app.decoder.decode(parsed)
        array = decoded["data"]
        preds = model.predict(array)
        t(f"orjson.loads, {payload} row(s)", lambda: orjson.loads(body))
        t(f"RequestDecoder.decode (np.array + checks), {payload} row(s)", lambda: app.decoder.decode(parsed))
        t(f"model.predict (sklearn), {payload} row(s)", lambda: model.predict(array), 500)
        t(f"encode_output({{'predictions': list}}), {payload} row(s)",
          lambda: scoring.encode_output({"predictions": preds.tolist()}))
    t("telemetry._now() (datetime isoformat)", _now)
    t("access-log record: _now() + orjson.dumps(record)", lambda: orjson.dumps({
        "time": _now(), "request_id": "abcd1234-1f", "method": "POST", "path": "/score", "status": 200,
        "latency_ms": round(0.00123 * 1000, 3), "model": "iris", "version": "1.0.0"}))
    t("Metrics.count (dict + histogram bisect)", lambda: app.metrics.count("score", 200, 0.0012))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--harness", default=bench.DEFAULT_HARNESS)
    ap.add_argument("--work", default=bench.DEFAULT_WORK)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    ap.add_argument("--only", default=None, help="run only the variants whose label contains this text")
    args = ap.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    plain, batch, keys = bench.prepare_model_dirs(Path(args.harness), work)
    bodies = {k: p.read_bytes() for k, p in bench.prepare_payloads(Path(args.harness), work).items()}
    # the answers are right before anything is timed
    expected = json.loads((Path(args.harness) / "payloads" / "expected_100.json").read_text())
    model = __import__("joblib").load(plain / "model.joblib")
    assert model.predict(orjson.loads(bodies["100"])["data"]).tolist() == expected
    print("## per step (CPU µs, best of 5)\n\n| step | µs |\n|---|---|")
    step_rows = steps(plain, keys, bodies)
    print("\n## whole ASGI scoring path (CPU µs / wall µs per request, median of repeats)\n")
    print("| variant | rows | concurrent | CPU µs | wall µs |\n|---|---|---|---|---|")
    rows = asyncio.run(variants(args, plain, batch, keys, bodies))
    del step_rows, rows


if __name__ == "__main__":
    sys.exit(main())

"""Score one request without a server: the scoring app itself, driven through its ASGI interface
(lifespan start, init(), one POST to the scoring route, lifespan stop), so decoding, admission,
run() and the encoding of the answer are exactly the server's. `python -m gitops_ml.serving.predict`
is the entry point in a model's own environment; settings come from GITOPS_ML_* as in the image.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_ml.serving.app import ScoringApp
from gitops_ml.serving.model_files import ModelFiles
from gitops_ml.serving.settings import MODEL_DIR, READINESS_PATH, SCORE_PATH, ServerSettings

READY_POLL_SECONDS = 0.02


@dataclass(frozen=True)
class Prediction:
    """The scoring route's answer; status 0 with `error` when init() failed and nothing was scored."""

    status: int
    body: bytes
    error: str = ""


class _Exchange:
    """One ASGI request/response pair, collected in memory."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.sent = False
        self.status = 0
        self.chunks: list[bytes] = []

    async def receive(self) -> dict[str, Any]:
        if not self.sent:
            self.sent = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await asyncio.Event().wait()  # never: the app does not read past the body
        raise AssertionError("unreachable")

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
        elif message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))


def _scope(method: str, path: str, body: bytes) -> dict[str, Any]:
    headers = [(b"host", b"predict"), (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 0), "server": ("predict", 0),
    }


async def _call(app: ScoringApp, method: str, path: str, body: bytes = b"") -> _Exchange:
    exchange = _Exchange(body)
    await app(_scope(method, path, body), exchange.receive, exchange.send)
    return exchange


async def _predict(settings: ServerSettings, files: ModelFiles, body: bytes, timeout: float) -> Prediction:
    app = ScoringApp(settings, files=files)
    startup: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await startup.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, startup.get, replies.put))
    try:
        started = await replies.get()
        if started["type"] != "lifespan.startup.complete":
            return Prediction(0, b"", str(started.get("message", "the app did not start")))
        deadline = time.monotonic() + timeout
        while True:  # init() runs on a thread; readiness says when it is done, or why it failed
            ready = await _call(app, "GET", READINESS_PATH)
            answer = b"".join(ready.chunks)
            if ready.status == 200:
                break
            if b'"failed"' in answer:
                import orjson  # noqa: PLC0415

                return Prediction(0, answer, str(orjson.loads(answer).get("error", "init() failed")))
            if time.monotonic() > deadline:
                return Prediction(0, answer, f"init() did not finish within {timeout:g} s")
            await asyncio.sleep(READY_POLL_SECONDS)
        scored = await _call(app, "POST", SCORE_PATH, body)
        return Prediction(scored.status, b"".join(scored.chunks))
    finally:
        await startup.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(lifespan, timeout=max(5.0, settings.grace_seconds + 5.0))


def predict(settings: ServerSettings, files: ModelFiles, body: bytes, *, timeout: float = 600.0, quiet: bool = True) -> Prediction:
    """Load the model (init()), score `body` as POST /score would, stop; auth is not asked for.
    `quiet` keeps the server's JSON log lines (start, ready, stopped) out of a one-off answer."""
    # one request with nobody else waiting: the admission timeouts of a busy server do not apply
    settings = dataclasses.replace(
        settings, auth_enabled=False, capture_enabled=False, access_log=False,
        request_timeout=max(settings.request_timeout, timeout), queue_timeout=max(settings.queue_timeout, timeout),
    )
    if not quiet:
        return asyncio.run(_predict(settings, files, body, timeout))
    raw = io.BytesIO()
    log = io.TextIOWrapper(raw, encoding="utf-8")  # the server's log writes bytes to stderr's buffer
    with contextlib.redirect_stderr(log):
        result = asyncio.run(_predict(settings, files, body, timeout))
    log.flush()
    if result.status >= 500:  # the server's log has why; a one-off answer has no log to look in
        for line in raw.getvalue().decode("utf-8", "replace").splitlines():
            if '"run() raised"' in line:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                print(event.get("traceback") or event.get("error") or event.get("message"), file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gitops_ml.serving.predict", description="Score one request with the model in $GITOPS_ML_MODEL_DIR.")
    parser.add_argument("--data", required=True, help="file holding the JSON request body ('-' reads stdin)")
    parser.add_argument("--model-dir", help=f"model directory (default: $GITOPS_ML_MODEL_DIR or {MODEL_DIR})")
    args = parser.parse_args(argv)
    try:
        settings = ServerSettings.from_env(model_dir=args.model_dir or MODEL_DIR)
    except (TypeError, ValueError) as exc:
        print(f"error: a GITOPS_ML_* variable is invalid: {exc}", file=sys.stderr)
        return 2
    if args.model_dir:
        settings = dataclasses.replace(settings, model_dir=args.model_dir)
    body = sys.stdin.buffer.read() if args.data == "-" else Path(args.data).read_bytes()
    # the answer goes to the real stdout; what score.py prints goes to stderr, not into the answer
    answer = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    result = predict(settings, ModelFiles.from_env(), body)
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)
        return 4
    answer.write(b"%d\n" % result.status + result.body + b"\n")
    answer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

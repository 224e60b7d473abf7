"""The scoring server's ASGI application: routing, auth, body limits, decoding, telemetry.

A raw ASGI callable rather than a framework: the scoring path is one function with no middleware
stack, which is where a Python model server spends most of its time. score.py runs on worker
threads (see scoring.py); init() runs on a thread at start so liveness answers while it loads.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import random
import re
import secrets
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Mapping

import orjson

from gitops_ml.serving.auth import KeyStore
from gitops_ml.serving.decoding import InputError, RequestDecoder, unsupported_keywords
from gitops_ml.serving.docs_page import render_docs
from gitops_ml.serving.openapi import VERSIONED_SCORE_PATH, build_openapi
from gitops_ml.serving.scoring import AdmissionLimits, Job, Rejected, Scorer, error_body, load_script
from gitops_ml.serving.settings import (
    DOCS_PATH,
    LIVENESS_PATH,
    METRICS_PATH,
    OPENAPI_PATH,
    READINESS_PATH,
    SCORE_PATH,
    ServerSettings,
)
from gitops_ml.serving.telemetry import CONTENT_TYPE, AccessLog, Capture, Metrics, _now, log_event

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON = b"application/json"
_SEVERAL = b"\x00several"  # a header that came more than once (NUL cannot occur in a header value)
CLIENT_CLOSED = 499  # nginx's code for a client that left before its answer; never sent, only counted
OFF_LOOP_BYTES = 256 * 1024  # bodies larger than this are parsed and decoded on a thread
SCORE_PATHS = frozenset((SCORE_PATH, VERSIONED_SCORE_PATH))
_NAN_TOKENS = (b"NaN", b"Infinity")
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:/-]+")  # a caller's X-Request-Id is echoed and logged only if plain


@dataclass(frozen=True)
class ModelFiles:
    """Files of the model directory the server reads; names come from the manifest (defaults here).

    Inside the image they can be set with GITOPS_ML_SCRIPT, GITOPS_ML_SCHEMA, GITOPS_ML_SAMPLE and
    GITOPS_ML_OUTPUT_SCHEMA, because the server does not parse manifest.yaml there. A built-in
    scorer (GITOPS_ML_BUILTIN, on GITOPS_ML_ARTIFACT) replaces the script.
    """

    script: str = "score.py"
    schema: str = "schema.json"
    sample: str = "sample.json"
    output_schema: str = ""
    builtin: str = ""
    artifact: str = ""
    builtin_options: str = ""  # JSON: the manifest's scoring options for the built-in

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ModelFiles":
        env = os.environ if env is None else env
        return cls(
            script=env.get("GITOPS_ML_SCRIPT") or cls.script,
            schema=env.get("GITOPS_ML_SCHEMA") or cls.schema,
            sample=env.get("GITOPS_ML_SAMPLE") or cls.sample,
            output_schema=env.get("GITOPS_ML_OUTPUT_SCHEMA") or cls.output_schema,
            builtin=env.get("GITOPS_ML_BUILTIN") or cls.builtin,
            artifact=env.get("GITOPS_ML_ARTIFACT") or cls.artifact,
            builtin_options=env.get("GITOPS_ML_BUILTIN_OPTIONS") or cls.builtin_options,
        )


def _read_json(path: Path) -> Any:
    return orjson.loads(path.read_bytes()) if path.is_file() else None


class ScoringApp:
    """ASGI app for one model. Construct it, hand it to uvicorn; lifespan startup runs init()."""

    def __init__(
        self,
        settings: ServerSettings,
        *,
        files: ModelFiles = ModelFiles(),
        api_keys: Iterable[str] = (),
        access_stream: Any = None,
    ) -> None:
        self.settings = settings
        self.model_dir = Path(settings.model_dir)
        self.files = files
        schema = _read_json(self.model_dir / files.schema)
        sample = _read_json(self.model_dir / files.sample)
        output_schema = _read_json(self.model_dir / files.output_schema) if files.output_schema else None
        self.decoder = RequestDecoder.from_schema(schema) if isinstance(schema, dict) else None
        self.ignored_keywords = unsupported_keywords(schema) if isinstance(schema, dict) else []
        self.single_input = next(iter(self.decoder.fields)) if self.decoder and len(self.decoder.fields) == 1 else None
        self.keys = KeyStore(settings.keys_dir if settings.auth_enabled else None, api_keys)
        self.auth = settings.auth_enabled
        openapi = build_openapi(
            model=settings.model_name,
            version=settings.model_version,
            request_schema=schema,
            sample=sample,
            auth=self.auth,
            output_schema=output_schema,
        )
        self.openapi = orjson.dumps(openapi)
        self.docs, docs_policy = render_docs(openapi, score_path=SCORE_PATH, openapi_path=OPENAPI_PATH)
        self.docs_headers = [(b"content-security-policy", docs_policy), (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
        self.metrics = Metrics(settings.model_name, settings.model_version, self._gauges)
        self.access_log = AccessLog(access_stream) if settings.access_log else None
        self.capture: Capture | None = None
        if settings.capture_enabled and settings.capture_sampling > 0:
            self.capture = Capture(
                settings.capture_dir,
                settings.model_name,
                settings.model_version,
                sampling=settings.capture_sampling,
                max_file_bytes=settings.capture_max_file_bytes,
                metrics=self.metrics,
            )
        self.limits = AdmissionLimits(
            max_concurrent=settings.max_concurrent,
            queue_size=settings.queue_size,
            queue_timeout=settings.queue_timeout,
            request_timeout=settings.request_timeout,
            batch=settings.batch_enabled,
            batch_max_size=settings.batch_max_size,
            batch_max_wait=settings.batch_max_wait_ms / 1000.0,
        )
        self.scorer: Scorer | None = None
        self.ready = False
        self.draining = False
        self.init_error = ""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.request_ids = itertools.count(1)
        self.id_prefix = secrets.token_hex(4) + "-"
        self.retry_after = str(max(1, round(settings.queue_timeout))).encode()
        self.version_header = settings.model_version.encode()
        self.initialized = threading.Event()

    # --- lifecycle ----------------------------------------------------------------------------

    def begin_drain(self) -> None:
        """Readiness turns false at once; requests keep being served until the server stops."""
        if not self.draining:
            self.draining = True
            log_event("info", "draining: readiness is false, finishing accepted requests", model=self.settings.model_name)

    def _gauges(self) -> dict[str, float]:
        gauges: dict[str, float] = dict(self.scorer.gauges()) if self.scorer else {"in_flight": 0.0, "queue_depth": 0.0}
        gauges["ready"] = 1.0 if self.ready and not self.draining and (self.scorer is None or self.scorer.usable) else 0.0
        return gauges

    def _start(self) -> None:
        self.loop = asyncio.get_running_loop()
        if self.auth and self.keys.empty:
            log_event("warning", "auth is enabled but no key is set: every scoring request gets 401", keys_dir=self.settings.keys_dir)
        if self.ignored_keywords:
            log_event("warning", "schema keywords not checked by the server", keywords=self.ignored_keywords)
        if self.capture:
            self.capture.start()
        threading.Thread(target=self._init_model, name="gitops-ml-init", daemon=True).start()

    def _init_model(self) -> None:
        script = self.model_dir / self.files.script
        started = time.monotonic()
        try:
            if self.files.builtin:
                from gitops_ml.serving.builtins import load_builtin  # noqa: PLC0415 - only built-in models load it

                module: Any = load_builtin(self.files.builtin, self.model_dir, self.files.artifact, options=self.files.builtin_options,
                                           input_names=list(self.decoder.fields) if self.decoder else [], batch=self.limits.batch)
            else:
                module = load_script(script)
            init = getattr(module, "init", None)
            if callable(init):
                init()
            # The model's objects live for the whole process: move them out of the collector's
            # generations so full collections stop rescanning them (measured: 100-row p99 at 64
            # connections 73 -> 21 ms, 49 -> 3 full collections of ~60 ms per run).
            gc.collect()
            gc.freeze()
        except BaseException as exc:  # noqa: BLE001 - any failure keeps the server unready, and says why
            message = f"{type(exc).__name__}: {exc}"
            log_event("error", f"init() failed, the server stays unready: {message}", script=str(script), traceback="".join(traceback.format_exception(exc)))
            self._call_in_loop(self._init_failed, message)
        else:
            self._call_in_loop(self._init_done, module.run, time.monotonic() - started)
        finally:
            self.initialized.set()

    def _call_in_loop(self, fn: Callable[..., None], *args: Any) -> None:
        assert self.loop is not None
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # the loop ended while init() ran
            pass

    def _init_done(self, run: Callable[[Any], Any], seconds: float) -> None:
        assert self.loop is not None
        self.scorer = Scorer(run, self.limits, self.metrics, self.loop)
        self.scorer.start()
        self.ready = True
        log_event(
            "info",
            "ready",
            model=self.settings.model_name,
            version=self.settings.model_version,
            init_seconds=round(seconds, 3),
            auth=self.auth,
            batch=self.limits.batch,
        )

    def _init_failed(self, message: str) -> None:
        self.init_error = message

    async def _stop(self) -> None:
        if self.scorer is not None:
            await self.scorer.stop(self.settings.grace_seconds)
        if self.capture is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.capture.close)
        if self.access_log is not None:
            self.access_log.flush()
        log_event("info", "stopped", model=self.settings.model_name)

    # --- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path in SCORE_PATHS:
                await self._score(scope, receive, send)
            else:
                await self._other(scope, path, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self._start()
                except Exception as exc:  # noqa: BLE001
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _respond(self, send: Send, status: int, body: bytes, request_id: bytes, content_type: bytes = JSON, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        headers = [
            (b"content-type", content_type),
            (b"content-length", b"%d" % len(body)),
            (b"x-request-id", request_id),
            (b"x-model-version", self.version_header),
        ]
        if extra:
            headers += extra
        if self.draining:
            # Connections close after each answer while draining, so clients reconnect to a
            # replica that stays up instead of reusing one that is about to go away.
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _score(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        content_type = length = authorization = api_key = given_id = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                length = value
            elif name == b"authorization":
                authorization = value if authorization is None else _SEVERAL
            elif name == b"x-api-key":
                api_key = value if api_key is None else _SEVERAL
            elif name == b"x-request-id":
                given_id = value
        if given_id is not None and len(given_id) <= 128 and _SAFE_ID.fullmatch(given_id):
            request_id = given_id.decode("ascii")
        else:
            request_id = f"{self.id_prefix}{next(self.request_ids):x}"
        rid = request_id.encode()
        try:
            status, body, extra, captured = await self._score_body(scope, receive, content_type, length, authorization, api_key, request_id)
        except _Disconnected:
            status, body, extra, captured = CLIENT_CLOSED, b"", None, None  # nobody to answer; counted and logged
        except Exception as exc:  # noqa: BLE001 - a bug here must still answer JSON, counted and logged
            log_event("error", "scoring request failed in the server", request_id=request_id, error=f"{type(exc).__name__}: {exc}",
                      traceback="".join(traceback.format_exception(exc)))
            status, body, extra, captured = 500, error_body("internal", "the server failed on this request; its log has details under this request id", request_id), None, None
        if status != CLIENT_CLOSED:
            await self._respond(send, status, body, rid, extra=extra)
        seconds = time.perf_counter() - started
        self.metrics.count("score", status, seconds)
        if self.access_log is not None:
            self.access_log.write(
                {
                    "time": _now(),
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "latency_ms": round(seconds * 1000, 3),
                    "model": self.settings.model_name,
                    "version": self.settings.model_version,
                },
                self.loop,
            )
        if captured is not None and self.capture is not None and random.random() < self.capture.sampling:
            self.capture.offer(
                {
                    "request_id": request_id,
                    "time": _now(),
                    "model": self.settings.model_name,
                    "version": self.settings.model_version,
                    "status": status,
                    "latency_ms": round(seconds * 1000, 3),
                    # one record per line: a newline in valid JSON is whitespace between tokens, never inside a string
                    "input": orjson.Fragment(captured.replace(b"\n", b" ").replace(b"\r", b" ") if b"\n" in captured or b"\r" in captured else captured),
                    "output": orjson.Fragment(body) if status == 200 else orjson.loads(body),
                },
                len(captured) + len(body),
            )

    async def _score_body(
        self, scope: Scope, receive: Receive, content_type: bytes | None, length: bytes | None, authorization: bytes | None, api_key: bytes | None, request_id: str
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]] | None, bytes | None]:
        """(status, body, extra headers, raw input to capture) of one scoring request."""
        if scope["method"] != "POST":
            return 405, error_body("method_not_allowed", "use POST", request_id), [(b"allow", b"POST")], None
        if self.auth:
            if authorization == _SEVERAL or api_key == _SEVERAL:
                # which one would count is a guess a proxy and this server could make differently
                self.metrics.reject("unauthorized")
                return 401, error_body("unauthorized", "send one key: several Authorization or X-Api-Key headers came", request_id), [(b"www-authenticate", b'Bearer realm="gitops-ml"')], None
            presented = api_key.strip() if api_key is not None else None
            if authorization is not None:
                scheme, _, token = authorization.strip().replace(b"\t", b" ").partition(b" ")
                if scheme.lower() == b"bearer":
                    presented = token.strip()
            if not self.keys.check(presented):
                self.metrics.reject("unauthorized")
                why = "missing key" if presented is None else "wrong key"
                return 401, error_body("unauthorized", f"{why}: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'", request_id), [(b"www-authenticate", b'Bearer realm="gitops-ml"')], None
        scorer = self.scorer
        if scorer is None or not self.ready:
            reason = "init() failed" if self.init_error else "the model is still loading"
            return 503, error_body("not_ready", f"not ready: {reason}", request_id), [(b"retry-after", b"5")], None
        if content_type is not None and not (content_type == JSON or _is_json_type(content_type)):
            return 415, error_body("unsupported_media_type", f"content type must be application/json, got {content_type.decode('latin-1')!r}", request_id), None, None
        limit = self.settings.max_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            return 413, error_body("too_large", f"body over the limit of {limit} bytes", request_id), None, None
        if scorer.pending + scorer.arriving >= scorer.capacity or scorer.stopping:
            # answered before the body is read: memory holds at most `capacity` bodies, whatever the load
            self.metrics.reject("queue_full")
            return self.settings.reject_status, error_body("overloaded", "the queue is full; retry later", request_id), [(b"retry-after", self.retry_after)], None
        scorer.arriving += 1
        try:
            try:
                raw = await self._read_body_in_time(receive, limit)
            except _TooSlow:
                self.metrics.reject("body_timeout")
                return 408, error_body("body_timeout", f"the body did not arrive within {self.settings.body_timeout:g} s", request_id), [(b"connection", b"close")], None
            if raw is None:
                return 413, error_body("too_large", f"body over the limit of {limit} bytes", request_id), None, None
            if not raw:
                return 400, error_body("empty_body", "the body is empty; send a JSON object of named inputs", request_id), None, None
            if len(raw) > OFF_LOOP_BYTES:
                # parsing megabytes holds the loop for tens of milliseconds: probes and the
                # immediate 503s must not wait for it (a thread still lets the loop run between GIL hand-overs)
                assert self.loop is not None
                decoded = await self.loop.run_in_executor(None, self._decode, raw, request_id)
            else:
                decoded = self._decode(raw, request_id)
            if isinstance(decoded, _Refusal):
                return decoded.status, decoded.body, None, None
            data = decoded.data
            try:
                job: Job = scorer.submit(data, request_id)
            except Rejected:
                self.metrics.reject("queue_full")
                status = self.settings.reject_status
                return status, error_body("overloaded", "the queue is full; retry later", request_id), [(b"retry-after", self.retry_after)], None
        finally:
            scorer.arriving -= 1
        status, body = await job.future
        if status >= 500 and status != 503:
            return status, body, None, raw
        extra = [(b"retry-after", self.retry_after)] if status == 503 else None
        return status, body, extra, raw

    def _decode(self, raw: bytes, request_id: str) -> "_Decoded | _Refusal":
        """The body as run() takes it, or the 400/422 answer that names what did not fit."""
        try:
            parsed = orjson.loads(raw)  # integers beyond 64 bits come back as floats, as in JavaScript
        except orjson.JSONDecodeError as exc:
            return _Refusal(400, _json_error(raw, exc, request_id))
        decoder = self.decoder
        if decoder is None:
            return _Decoded(parsed)
        try:
            inputs = decoder.decode(parsed, raw=raw)
        except InputError as exc:
            return _Refusal(exc.status, error_body("invalid_input", exc.message, request_id, field=exc.field, expected=exc.expected))
        return _Decoded(inputs[self.single_input] if self.single_input is not None and len(inputs) == 1 else inputs)

    async def _read_body_in_time(self, receive: Receive, limit: int) -> bytes | None:
        """_read_body with a deadline: _TooSlow for a client that stalls mid-upload (it gets 408)."""
        task = asyncio.current_task()
        assert self.loop is not None and task is not None
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        # a timer, not asyncio.wait_for: no extra task per request on the hot path
        timer = self.loop.call_later(self.settings.body_timeout, expire)
        try:
            return await _read_body(receive, limit)
        except asyncio.CancelledError:
            if not expired:
                raise
            uncancel = getattr(task, "uncancel", None)
            if uncancel is not None:
                uncancel()
            raise _TooSlow() from None
        finally:
            timer.cancel()

    async def _other(self, scope: Scope, path: str, send: Send) -> None:
        request_id = f"{self.id_prefix}{next(self.request_ids):x}".encode()
        method = scope["method"]
        # these routes never read a body: one that was sent closes the connection after the answer,
        # so a client cannot hold it open by trickling a body nobody waits for
        if any(name == b"transfer-encoding" or (name == b"content-length" and value not in (b"0", b"")) for name, value in scope["headers"]):
            send = _closing(send)
        route = {LIVENESS_PATH: "healthz", READINESS_PATH: "readyz", METRICS_PATH: "metrics", OPENAPI_PATH: "openapi", "/openapi.json": "openapi", DOCS_PATH: "docs", "/": "index"}.get(path)
        if route is None:
            status = 404
            await self._respond(send, 404, error_body("not_found", f"no route {path}; POST {SCORE_PATH} scores", request_id.decode()), request_id)
        elif method not in ("GET", "HEAD"):
            status = 405
            await self._respond(send, 405, error_body("method_not_allowed", "use GET", request_id.decode()), request_id, extra=[(b"allow", b"GET, HEAD")])
        elif route == "healthz":
            status = 200
            await self._respond(send, 200, b'{"status":"alive"}', request_id)
        elif route == "readyz":
            usable = self.scorer is None or self.scorer.usable
            if self.ready and not self.draining and usable:
                status, body = 200, b'{"status":"ready"}'
            else:
                state = "draining" if self.draining else ("failed" if self.init_error else ("stuck" if not usable else "starting"))
                status, body = 503, orjson.dumps({"status": state, "error": self.init_error} if self.init_error else {"status": state})
            await self._respond(send, status, body, request_id)
        elif route == "metrics":
            status = 200
            await self._respond(send, 200, self.metrics.render(), request_id, content_type=CONTENT_TYPE.encode())
        elif route == "openapi":
            status = 200
            await self._respond(send, 200, self.openapi, request_id)
        elif route == "docs":
            status = 200
            await self._respond(send, 200, self.docs, request_id, content_type=b"text/html; charset=utf-8", extra=self.docs_headers)
        else:
            status = 200
            index = {"model": self.settings.model_name, "version": self.settings.model_version, "score": SCORE_PATH, "openapi": OPENAPI_PATH, "docs": DOCS_PATH}
            await self._respond(send, 200, orjson.dumps(index), request_id)
        self.metrics.count(route or "unknown", status, 0.0)


def _closing(send: Send) -> Send:
    """send, with `connection: close` on the response."""

    async def closing(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message["headers"], (b"connection", b"close")]}
        await send(message)

    return closing


def _is_json_type(value: bytes) -> bool:
    media = value.split(b";", 1)[0].strip().lower()
    return media == JSON or (media.startswith(b"application/") and media.endswith(b"+json"))


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it passes `limit` (the rest is not buffered); _Disconnected
    when the client goes away first."""
    message = await receive()
    if message["type"] != "http.request":
        raise _Disconnected()
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body if len(body) <= limit else None
    chunks, size = [body], len(body)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _json_error(raw: bytes, exc: orjson.JSONDecodeError, request_id: str) -> bytes:
    """The 400 body for what orjson refused; a bare NaN or Infinity is named as such."""
    if any(token in raw for token in _NAN_TOKENS):
        try:
            json.loads(raw, parse_constant=_refuse_constant)
        except _ConstantError as found:
            return error_body("invalid_json", f"{found.constant} is not allowed: JSON numbers must be finite", request_id, field=found.constant)
        except (ValueError, RecursionError):
            pass
    return error_body("invalid_json", f"malformed JSON: {exc}", request_id)


class _Disconnected(Exception):
    """The client closed the connection before its body arrived."""


class _TooSlow(Exception):
    """The body did not arrive within the body timeout."""


@dataclass(frozen=True)
class _Decoded:
    data: Any


@dataclass(frozen=True)
class _Refusal:
    status: int
    body: bytes


class _ConstantError(ValueError):
    def __init__(self, constant: str) -> None:
        super().__init__(constant)
        self.constant = constant


def _refuse_constant(constant: str) -> Any:
    raise _ConstantError(constant)

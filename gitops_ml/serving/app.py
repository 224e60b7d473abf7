"""The scoring server's ASGI application: routing (with and without the endpoint's path prefix), auth,
admission of scoring requests, telemetry. Bodies are read and decoded by bodies.py, model files by
model_files.py. A raw ASGI callable rather than a framework: the scoring path is one function with
no middleware stack. score.py runs on worker threads (see scoring.py); init() runs on a thread at
start so liveness answers while it loads.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import re
import secrets
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

import orjson

from gitops_ml.errors import ConfigError, GitopsMlError
from gitops_ml.serving.auth import KeyStore
from gitops_ml.serving.bodies import (
    ByteBudget,
    Decoded,
    DecodeLane,
    Disconnected,
    OverBudget,
    Refusal,
    TooSlow,
    decode_body,
    read_body_in_time,
)
from gitops_ml.serving.decoding import unsupported_keywords
from gitops_ml.serving.docs_page import render_docs
from gitops_ml.serving.model_files import ModelFiles, compile_schema, read_model_json
from gitops_ml.serving.openapi import VERSIONED_SCORE_PATH, ProtocolDocs, build_openapi
from gitops_ml.serving.predictions import IdentityLabels, OutputDeclaration, Predictions, identity, sampled
from gitops_ml.serving.protocol_routes import Call, Protocols, Route, parse_route
from gitops_ml.serving.scoring import (
    AdmissionLimits,
    Job,
    Rejected,
    Scorer,
    encode_output,
    error_body,
    load_script,
    script_failure,
)
from gitops_ml.serving.settings import (
    DOCS_PATH,
    LIVENESS_PATH,
    METRICS_PATH,
    OPENAPI_PATH,
    READINESS_PATH,
    SCORE_PATH,
    ServerSettings,
)
from gitops_ml.serving.sink import S3Store, Sink, parse_sink_uri
from gitops_ml.serving.telemetry import CONTENT_TYPE, AccessLog, Capture, Metrics, _now, log_event

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON = b"application/json"
_SEVERAL = b"\x00several"  # a header that came more than once (NUL cannot occur in a header value)
CLIENT_CLOSED = 499  # nginx's code for a client that left before its answer; never sent, only counted
OFF_LOOP_BYTES = 256 * 1024  # bodies larger than this are parsed and decoded on the decode thread
SCORE_PATHS = frozenset((SCORE_PATH, VERSIONED_SCORE_PATH))
ROUTES = {LIVENESS_PATH: "healthz", READINESS_PATH: "readyz", METRICS_PATH: "metrics", OPENAPI_PATH: "openapi", "/openapi.json": "openapi", DOCS_PATH: "docs", "/": "index"}
_SAFE_ID = re.compile(rb"[A-Za-z0-9._:/-]+")  # a caller's X-Request-Id is echoed and logged only if plain
# version of the capture record: 1 added `format` and records of requests the input schema refused
CAPTURE_FORMAT = 1
_CLOSE = (b"connection", b"close")
_BEARER_ONLY = "the Authorization header must be 'Bearer <key>'"


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
        schema_path = self.model_dir / files.schema
        schema = read_model_json(schema_path)
        sample = read_model_json(self.model_dir / files.sample)
        output_schema = read_model_json(self.model_dir / files.output_schema) if files.output_schema else None
        self.decoder = compile_schema(schema, schema_path)
        self.ignored_keywords = unsupported_keywords(schema) if isinstance(schema, dict) else []
        self.single_input = next(iter(self.decoder.fields)) if self.decoder and len(self.decoder.fields) == 1 else None
        # the inference protocols map tensors onto schema.json's inputs: without one they are not served
        self.protocols = (
            Protocols(model=settings.model_name, version=settings.model_version, schema=schema, decoder=self.decoder,
                      output_schema=output_schema, platform=files.builtin or "python")
            if self.decoder is not None and isinstance(schema, dict) else None
        )
        self.keys = KeyStore(settings.keys_dir if settings.auth_enabled else None, api_keys)
        self.auth = settings.auth_enabled
        self.prefix = settings.path_prefix
        openapi = build_openapi(
            model=settings.model_name,
            version=settings.model_version,
            request_schema=schema,
            sample=sample,
            auth=self.auth,
            output_schema=output_schema,
            prefix=self.prefix,
            protocols=ProtocolDocs(self.protocols.layout.inputs_metadata(), self.protocols.layout.example(sample), self.protocols.v1.example(sample))
            if self.protocols is not None else None,
        )
        self.openapi = orjson.dumps(openapi)
        self.docs, docs_policy = render_docs(openapi, score_path=SCORE_PATH, openapi_path=OPENAPI_PATH, prefix=self.prefix)
        self.docs_headers = [(b"content-security-policy", docs_policy), (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
        self.metrics = Metrics(settings.model_name, settings.model_version, self._gauges, settings.environment, settings.track)
        self.predictions = predictions_of(settings, self.metrics)
        self.access_log = AccessLog(access_stream) if settings.access_log else None
        self.capture: Capture | None = None
        self.sink: Sink | None = None
        if settings.capture_enabled and settings.capture_sampling > 0:
            if settings.capture_sink_uri:
                target = parse_sink_uri(settings.capture_sink_uri)
                store = S3Store(target, endpoint=settings.capture_sink_endpoint, region=settings.capture_sink_region)
                self.sink = Sink(Path(settings.capture_dir), settings.model_name, target, store, open_records=self._open_records)
                # the upload counters carry the identity labels like every other family: alerts and
                # dashboards tell the versions (and a shadow's uploads) apart
                identity_labels = identity(settings.model_name, settings.model_version, settings.environment, settings.track)
                self.metrics.registry.register(IdentityLabels(self.sink, identity_labels))
            self.capture = Capture(
                settings.capture_dir,
                settings.model_name,
                settings.model_version,
                sampling=settings.capture_sampling,
                max_file_bytes=settings.capture_max_file_bytes,
                metrics=self.metrics,
                on_close=self.sink.file_closed if self.sink else None,
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
        self.budget = ByteBudget(settings.body_budget)
        # one large body decoded at a time: its parse holds the interpreter lock and ~19x its size in memory
        self.decode_lane = DecodeLane()
        self.scorer: Scorer | None = None
        self.ready = False
        self.draining = False
        self.init_error = ""
        self.init_failure: GitopsMlError | None = None
        self.on_init_failure: Callable[[], None] | None = None  # `gitops-ml serve` stops; the image stays up unready
        self.loop: asyncio.AbstractEventLoop | None = None
        self.request_ids = itertools.count(1)
        self.id_prefix = secrets.token_hex(4) + "-"
        self.retry_after = str(max(1, round(settings.queue_timeout))).encode()
        self.version_header = settings.model_version.encode()
        self.track_field = {"track": settings.track} if settings.track else {}  # joins a shadow's captures with the stable's
        self.initialized = threading.Event()

    # --- lifecycle ----------------------------------------------------------------------------

    def begin_drain(self) -> None:
        """Readiness turns false at once; requests keep being served until the server stops."""
        if not self.draining:
            self.draining = True
            log_event("info", "draining: readiness is false, finishing accepted requests", model=self.settings.model_name)

    def _open_records(self) -> int:
        return self.capture.file_records if self.capture is not None else 0

    def _gauges(self) -> dict[str, float]:
        gauges: dict[str, float] = dict(self.scorer.gauges()) if self.scorer else {"in_flight": 0.0, "queue_depth": 0.0, "arriving": 0.0}
        gauges["body_bytes"] = float(self.budget.used)
        gauges["ready"] = 1.0 if self.ready and not self.draining and (self.scorer is None or self.scorer.usable) else 0.0
        return gauges

    def _start(self) -> None:
        self.loop = asyncio.get_running_loop()
        if self.auth and self.keys.empty:
            log_event("warning", "auth is enabled but no key is set: every scoring request gets 401", keys_dir=self.settings.keys_dir)
        if self.ignored_keywords:
            log_event("warning", "schema keywords not checked by the server", keywords=self.ignored_keywords)
        if self.sink:
            self.sink.start()  # before capture: every file it finds on disk is closed
        if self.capture:
            self.capture.start()
        threading.Thread(target=self._init_model, name="gitops-ml-init", daemon=True).start()

    def _init_model(self) -> None:
        script = self.model_dir / self.files.script
        started = time.monotonic()
        what = f"loading the {self.files.builtin} built-in scorer" if self.files.builtin else f"importing {self.files.script}"
        try:
            if self.files.builtin:
                from gitops_ml.serving.builtins import load_builtin  # noqa: PLC0415 - only built-in models load it

                module: Any = load_builtin(self.files.builtin, self.model_dir, self.files.artifact, options=self.files.builtin_options,
                                           input_names=list(self.decoder.fields) if self.decoder else [], batch=self.limits.batch)
            else:
                module = load_script(script, list(self.decoder.fields) if self.decoder else [], batch=self.limits.batch)
            init = getattr(module, "init", None)
            if callable(init):
                what = "init()"
                init()
            # The model's objects live for the whole process: move them out of the collector's
            # generations so full collections stop rescanning them (measured: 100-row p99 at 64
            # connections 73 -> 21 ms, 49 -> 3 full collections of ~60 ms per run).
            gc.collect()
            gc.freeze()
        except BaseException as exc:  # noqa: BLE001 - any failure keeps the server unready, and says why
            failure = script_failure(exc, self.model_dir, what)
            tb = "".join(traceback.format_exception(exc)) if failure is not exc else ""
            log_event("error", f"the model did not load, the server stays unready: {failure}", script=str(script), hint=failure.hint, traceback=tb)
            self._call_in_loop(self._init_failed, failure)
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

    def _init_failed(self, failure: GitopsMlError) -> None:
        self.init_error = str(failure)  # located: path:line:col of score.py (or its helper) where it failed
        self.init_failure = failure
        if self.on_init_failure is not None:
            self.on_init_failure()

    async def _stop(self) -> None:
        if self.scorer is not None:
            await self.scorer.stop(self.settings.grace_seconds)
        if self.capture is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.capture.close)
        if self.sink is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.sink.close, self.settings.capture_sink_flush_seconds)
        if self.access_log is not None:
            self.access_log.flush()
        self.decode_lane.close()
        log_event("info", "stopped", model=self.settings.model_name)

    # --- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            prefix = self.prefix
            # a proxy that does not strip the endpoint's prefix sends it along: both forms are served
            if prefix and path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                path = path[len(prefix) :] or "/"
            if path in SCORE_PATHS:
                await self._score(scope, receive, send)
            elif self.protocols is not None and path.startswith(("/v2", "/v1/models/")) and (route := parse_route(path)) is not None:
                await self._protocol(scope, receive, send, route)
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

    async def _score(self, scope: Scope, receive: Receive, send: Send, call: Call | None = None) -> None:
        """A scoring request: /score's, or an inference protocol's with the `call` that speaks it."""
        started = time.perf_counter()
        content_type = length = authorization = api_key = given_id = None
        chunked = False
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
            elif name == b"transfer-encoding":
                chunked = True
        if given_id is not None and len(given_id) <= 128 and _SAFE_ID.fullmatch(given_id):
            request_id = given_id.decode("ascii")
        else:
            request_id = f"{self.id_prefix}{next(self.request_ids):x}"
        rid = request_id.encode()
        # an answer sent before the body is read closes the connection (the protocol lingers to drain
        # what is still on its way, so the client reads the answer instead of a reset)
        unread = chunked or (length is not None and length != b"0")
        try:
            status, body, extra, captured = await self._score_body(scope, receive, content_type, length, authorization, api_key, request_id, unread, call)
        except Disconnected:
            status, body, extra, captured = CLIENT_CLOSED, b"", None, None  # nobody to answer; counted and logged
        except Exception as exc:  # noqa: BLE001 - a bug here must still answer JSON, counted and logged
            log_event("error", "scoring request failed in the server", request_id=request_id, error=f"{type(exc).__name__}: {exc}",
                      traceback="".join(traceback.format_exception(exc)))
            status, body, extra, captured = 500, error_body("internal", "the server failed on this request; its log has details under this request id", request_id), None, None
        if status != CLIENT_CLOSED:
            if call is None:
                await self._respond(send, status, body, rid, extra=extra)
            else:
                status, body = await self._respond_call(send, call, status, body, rid, extra)
        seconds = time.perf_counter() - started
        self.metrics.count("score", status, seconds)
        if status == 200 and self.predictions is not None:
            self.predictions.observe(body)
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
        if captured is not None and self.capture is not None and sampled(request_id, self.capture.sampling):
            self.capture.offer(
                {
                    "format": CAPTURE_FORMAT,
                    "request_id": request_id,
                    "time": _now(),
                    "model": self.settings.model_name,
                    "version": self.settings.model_version,
                    **self.track_field,
                    "status": status,
                    "latency_ms": round(seconds * 1000, 3),
                    # one record per line: a newline in valid JSON is whitespace between tokens, never inside a string
                    "input": orjson.Fragment(captured.replace(b"\n", b" ").replace(b"\r", b" ") if b"\n" in captured or b"\r" in captured else captured),
                    "output": orjson.Fragment(body) if status == 200 else orjson.loads(body),
                },
                len(captured) + len(body),
            )

    def _unauthorized(self, presented: list[bytes], authorization: bytes | None, api_key: bytes | None, request_id: str) -> bytes | None:
        """The 401 body, or None when every credential the request carries is a valid key.

        One rule for the two headers: each one sent must hold a valid key (Authorization as `Bearer
        <key>`), so a bad credential is never ignored because the other one is good.
        """
        if authorization == _SEVERAL or api_key == _SEVERAL:
            # which one would count is a guess a proxy and this server could make differently
            return error_body("unauthorized", "send one key: several Authorization or X-Api-Key headers came", request_id)
        if authorization is not None and authorization.strip():  # an empty header presents nothing
            scheme, _, token = authorization.strip().replace(b"\t", b" ").partition(b" ")
            token = token.strip()
            if scheme.lower() != b"bearer" or not token:
                return error_body("unauthorized", _BEARER_ONLY, request_id)
            presented.append(token)
        if api_key is not None:
            presented.append(api_key.strip())
        if not presented:
            return error_body("unauthorized", "missing key: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'", request_id)
        check = self.keys.check
        if not all([check(key) for key in presented]):  # a list: every key is compared, whatever the first gave
            return error_body("unauthorized", "wrong key: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'", request_id)
        return None

    async def _score_body(
        self, scope: Scope, receive: Receive, content_type: bytes | None, length: bytes | None, authorization: bytes | None,
        api_key: bytes | None, request_id: str, unread: bool, call: Call | None = None,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]] | None, bytes | None]:
        """(status, body, extra headers, raw input to capture) of one scoring request; with a protocol's
        `call`, the body is decoded by it, and what is captured is the /score body it stands for."""
        close = [_CLOSE] if unread else []
        if scope["method"] != "POST":
            return 405, error_body("method_not_allowed", "use POST", request_id), [(b"allow", b"POST"), *close], None
        if self.auth:
            refused = self._unauthorized([], authorization, api_key, request_id)
            if refused is not None:
                self.metrics.reject("unauthorized")
                return 401, refused, [(b"www-authenticate", b'Bearer realm="gitops-ml"'), *close], None
        scorer = self.scorer
        if scorer is None or not self.ready:
            reason = "init() failed" if self.init_error else "the model is still loading"
            return 503, error_body("not_ready", f"not ready: {reason}", request_id), [(b"retry-after", b"5"), *close], None
        if call is None and content_type is not None and not (content_type == JSON or _is_json_type(content_type)):
            return 415, error_body("unsupported_media_type", f"content type must be application/json, got {content_type.decode('latin-1')!r}", request_id), close, None
        limit = self.settings.max_body_bytes
        announced = int(length) if length is not None and length.isdigit() else 0
        if announced > limit:
            return 413, error_body("too_large", f"body over the limit of {limit} bytes", request_id), close, None
        if scorer.pending + scorer.decoding >= scorer.capacity or scorer.stopping:
            # answered before the body is read: admitted requests are bounded whatever the load
            self.metrics.reject("queue_full")
            return self.settings.reject_status, error_body("overloaded", "the queue is full; retry later", request_id), [(b"retry-after", self.retry_after), *close], None
        budget = self.budget
        if not budget.room_for(announced):
            # bodies arriving and waiting already hold the memory set aside for them
            self.metrics.reject("body_budget")
            return self.settings.reject_status, error_body("overloaded", "the server holds as many request bytes as it may; retry later", request_id), [(b"retry-after", self.retry_after), *close], None
        hold = budget.hold()
        try:
            # A body still arriving holds bytes of the budget, never a scoring slot: slow uploads
            # cannot keep requests whose bodies are complete from being scored.
            scorer.arriving += 1
            try:
                try:
                    raw: bytes | None = await read_body_in_time(receive, limit, hold, self.settings.body_timeout)
                except TooSlow:
                    self.metrics.reject("body_timeout")
                    return 408, error_body("body_timeout", f"the body did not arrive within {self.settings.body_timeout:g} s", request_id), [_CLOSE], None
                except OverBudget:
                    self.metrics.reject("body_budget")
                    return self.settings.reject_status, error_body("overloaded", "the server holds as many request bytes as it may; retry later", request_id), [(b"retry-after", self.retry_after), _CLOSE], None
                if raw is None:
                    return 413, error_body("too_large", f"body over the limit of {limit} bytes", request_id), [_CLOSE], None
                if not raw:
                    return 400, error_body("empty_body", "the body is empty; send a JSON object of named inputs", request_id), None, None
                if scorer.pending + scorer.decoding >= scorer.capacity:
                    self.metrics.reject("queue_full")
                    return self.settings.reject_status, error_body("overloaded", "the queue is full; retry later", request_id), [(b"retry-after", self.retry_after)], None
                scorer.decoding += 1  # from here on the request counts against the queue
                try:
                    if call is not None:
                        # the protocols' inputs, as /score's: large ones on the decode thread
                        decoded = call.decode(raw, request_id) if len(raw) <= OFF_LOOP_BYTES else await self.decode_lane.run(call.decode, raw, request_id)
                    elif len(raw) <= OFF_LOOP_BYTES:
                        decoded = decode_body(raw, self.decoder, self.single_input, request_id)
                    else:
                        decoded = await self._decode_off_loop(raw, request_id)
                finally:
                    scorer.decoding -= 1
                if isinstance(decoded, Refusal):
                    # refused by the schema: captured (the share of refusals is a drift signal); malformed JSON is not
                    if decoded.form is not None and self.capture is not None:
                        return decoded.status, decoded.body, None, encode_output(decoded.form)
                    return decoded.status, decoded.body, None, raw if decoded.parsed else None
                if self.capture is None:
                    raw = None  # nothing will read it again: its memory goes before the request waits
                elif decoded.form is not None:
                    # a protocol's request is captured as the /score body it stands for (what monitor reads)
                    raw = encode_output(decoded.form) if sampled(request_id, self.capture.sampling) else None
                hold.reset(decoded.held + (len(raw) if raw is not None else 0))
                try:
                    job: Job = scorer.submit(decoded.data, request_id)
                except Rejected:
                    self.metrics.reject("queue_full")
                    status = self.settings.reject_status
                    return status, error_body("overloaded", "the queue is full; retry later", request_id), [(b"retry-after", self.retry_after)], None
                del decoded
            finally:
                scorer.arriving -= 1
            status, body = await job.future
        finally:
            hold.release()
        if status >= 500 and status != 503:
            return status, body, None, raw
        extra = [(b"retry-after", self.retry_after)] if status == 503 else None
        return status, body, extra, raw

    async def _respond_call(self, send: Send, call: Call, status: int, body: bytes, rid: bytes, extra: list[tuple[bytes, bytes]] | None) -> tuple[int, bytes]:
        """Answers a protocol's request in its shape; (status, body) as /score would have answered, for
        metrics and capture (a refusal the protocol answers 400 is /score's 422)."""
        try:
            shown, reply, content_type, more = call.answer(status, body)
        except Exception as exc:  # noqa: BLE001 - an output the protocol cannot carry is a 500 in its shape, logged
            log_event("error", "the answer could not be put in the protocol's shape", request_id=rid.decode(), error=f"{type(exc).__name__}: {exc}",
                      traceback="".join(traceback.format_exception(exc)))
            status, body = 500, error_body("internal", "the answer could not be put in the protocol's shape; the log has details", rid.decode())
            shown, reply, content_type, more = call.answer(status, body)
        await self._respond(send, shown, reply, rid, content_type=content_type, extra=[*(extra or ()), *more])
        return status, body

    async def _protocol(self, scope: Scope, receive: Receive, send: Send, route: Route) -> None:
        """An inference protocol's route: scoring goes through _score as /score does; the rest is read-only."""
        protocols = self.protocols
        assert protocols is not None
        if route.kind in ("infer", "v1_predict") and protocols.serves(route):
            await self._score(scope, receive, send, protocols.call(route, scope["headers"]))
            return
        request_id = f"{self.id_prefix}{next(self.request_ids):x}"
        rid = request_id.encode()
        unknown = protocols.unknown(route, request_id)
        if any(name == b"transfer-encoding" or (name == b"content-length" and value not in (b"0", b"")) for name, value in scope["headers"]):
            send = _closing(send)  # as in _other: a body nobody reads closes the connection
        if unknown is not None:
            status, body = 404, unknown
        elif scope["method"] not in ("GET", "HEAD"):
            status, body = 405, orjson.dumps({"error": "use GET", "request_id": request_id})
        else:
            ready = self.ready and not self.draining and (self.scorer is None or self.scorer.usable)
            kind = route.kind
            if kind == "live":
                status, body = 200, b'{"live":true}'
            elif kind == "ready":
                status, body = (200 if ready else 503), orjson.dumps({"ready": ready})
            elif kind == "model_ready":
                status, body = (200 if ready else 503), orjson.dumps({"name": protocols.model, "ready": ready})
            elif kind == "v1_ready":
                status, body = (200 if ready else 503), orjson.dumps({"name": protocols.model, "ready": ready})
            elif kind == "metadata":
                status, body = 200, protocols.metadata
            elif kind == "config":
                status, body = 200, protocols.config
            else:
                status, body = 200, protocols.server
        extra = [(b"allow", b"GET, HEAD")] if status == 405 else None
        await self._respond(send, status, body, rid, extra=extra)
        self.metrics.count(f"v2_{route.kind}" if not route.kind.startswith("v1") else route.kind, status, 0.0)

    async def _decode_off_loop(self, raw: bytes, request_id: str) -> Decoded | Refusal:
        # parsing megabytes holds the interpreter lock for a long time: on the decode thread, one body
        # at a time, the loop still gets its turns (probes, immediate 503s)
        decoded: Decoded | Refusal = await self.decode_lane.run(decode_body, raw, self.decoder, self.single_input, request_id)
        return decoded

    async def _other(self, scope: Scope, path: str, send: Send) -> None:
        request_id = f"{self.id_prefix}{next(self.request_ids):x}".encode()
        method = scope["method"]
        # these routes never read a body: one that was sent closes the connection after the answer,
        # so a client cannot hold it open by trickling a body nobody waits for
        if any(name == b"transfer-encoding" or (name == b"content-length" and value not in (b"0", b"")) for name, value in scope["headers"]):
            send = _closing(send)
        route = ROUTES.get(path)
        if route is None:
            status = 404
            await self._respond(send, 404, error_body("not_found", f"no route {scope['path']}; POST {self.prefix}{SCORE_PATH} scores", request_id.decode()), request_id)
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
            prefix = self.prefix
            index = {"status": "alive", "model": self.settings.model_name, "version": self.settings.model_version, "score": prefix + SCORE_PATH, "openapi": prefix + OPENAPI_PATH, "docs": prefix + DOCS_PATH}
            await self._respond(send, 200, orjson.dumps(index), request_id)
        self.metrics.count(route or "unknown", status, 0.0)


def predictions_of(settings: ServerSettings, metrics: Metrics) -> Predictions | None:
    """The prediction counters of a server whose settings declare an output, registered beside its
    other metrics with the same identity labels; None when no output is declared."""
    try:
        declaration = OutputDeclaration.from_json(settings.prediction_metrics)
    except ValueError as exc:
        raise ConfigError(str(exc), hint="the manifest's output: declaration renders this variable; re-render, or fix the environment") from None
    if declaration is None:
        return None
    predictions = Predictions(declaration)
    labels = identity(settings.model_name, settings.model_version, settings.environment, settings.track)
    metrics.registry.register(IdentityLabels(predictions, labels))
    return predictions


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

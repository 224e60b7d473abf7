"""Run the scoring app under uvicorn (httptools + uvloop when installed) with graceful shutdown.

SIGTERM: readiness turns false at once; after `drain_seconds` (time for the endpoint to leave the
Service's endpoints) uvicorn stops accepting, finishes accepted and queued requests within the
grace period, the app flushes capture, and the process exits 0. A second signal stops at once.

Connections are bounded (`ConnectionLimits`): request line + headers in bytes, the time a head may
take to arrive, and how long a connection may sit idle; httptools gets them from protocol.py.
"""

from __future__ import annotations

import asyncio
import importlib.util
from dataclasses import dataclass
from types import FrameType
from typing import Any, Iterable

import uvicorn

from gitops_ml.serving.app import ModelFiles, ScoringApp
from gitops_ml.serving.settings import ServerSettings
from gitops_ml.serving.telemetry import log_event

MAX_HEAD_BYTES = 64 * 1024  # request line + headers: 431 above it (h11: its incomplete-event limit)
HEADER_TIMEOUT = 10.0  # from a request's first byte to the end of its headers, then the connection is closed
IDLE_TIMEOUT = 75.0  # keep-alive, and a new connection's wait for a request: above load balancers' idle timeouts
# open connections per process: beyond it a new one is closed at once, so unfinished heads can hold
# at most MAX_CONNECTIONS x MAX_HEAD_BYTES (128 MiB) for HEADER_TIMEOUT
MAX_CONNECTIONS = 2048


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-connection limits of the HTTP/1.1 server, in bytes and seconds."""

    max_head_bytes: int = MAX_HEAD_BYTES
    header_timeout: float = HEADER_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    max_connections: int = MAX_CONNECTIONS


def best_loop() -> str:
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def best_http() -> str:
    return "httptools" if importlib.util.find_spec("httptools") else "h11"


def http_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol] | str:
    """httptools bounded by `limits` when it is installed, else h11 (bounded by its own setting)."""
    if best_http() != "httptools":
        return "h11"
    from gitops_ml.serving.protocol import limited_protocol  # noqa: PLC0415 - imports httptools

    return limited_protocol(max_head_bytes=limits.max_head_bytes, header_timeout=limits.header_timeout, max_connections=limits.max_connections)


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose first SIGTERM/SIGINT drains before it stops."""

    def __init__(self, config: uvicorn.Config, app: ScoringApp, drain_seconds: float) -> None:
        super().__init__(config)
        self.scoring_app = app
        self.drain_seconds = drain_seconds
        self.signalled = False
        self.loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Signals are deliberately not recorded for uvicorn to re-raise after shutdown: that would
        # end the process with -SIGTERM, and Kubernetes expects a drained server to exit 0.
        if self.signalled or self.loop is None:
            self.should_exit = True
            self.force_exit = self.signalled
            return
        self.signalled = True
        # Signal handlers run between bytecodes of the loop thread: hand the work to the loop.
        self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self.scoring_app.begin_drain()
        assert self.loop is not None
        self.loop.call_later(self.drain_seconds, self._stop)

    def _stop(self) -> None:
        self.should_exit = True


def run_server(
    settings: ServerSettings,
    *,
    files: ModelFiles = ModelFiles(),
    api_keys: Iterable[str] = (),
    drain_seconds: float = 0.0,
    loop: str | None = None,
    limits: ConnectionLimits = ConnectionLimits(),
) -> None:
    """Serve until signalled. Blocks; returns after a graceful stop."""
    app = ScoringApp(settings, files=files, api_keys=api_keys)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop=loop or best_loop(),
        http=http_protocol(limits),
        lifespan="on",
        access_log=False,  # the app writes its own JSON access log
        proxy_headers=False,  # the app never reads the client address; the middleware cost ~10 %
        log_level="warning",
        timeout_graceful_shutdown=max(1, int(settings.grace_seconds)),
        timeout_keep_alive=limits.idle_timeout,  # type: ignore[arg-type]  # uvicorn annotates int, uses it as seconds
        server_header=False,
        date_header=False,
        h11_max_incomplete_event_size=limits.max_head_bytes,
    )
    server = DrainingServer(config, app, drain_seconds)
    log_event(
        "info",
        "starting",
        model=settings.model_name,
        version=settings.model_version,
        address=f"http://{settings.host}:{settings.port}",
        auth=settings.auth_enabled,
    )
    server.run()
    if not server.started:
        raise OSError(f"could not listen on {settings.host}:{settings.port}")

"""Run the scoring app under uvicorn (httptools + uvloop when installed) with graceful shutdown.

SIGTERM: readiness turns false at once; after `drain_seconds` (time for the endpoint to leave the
Service's endpoints) uvicorn stops accepting, finishes accepted and queued requests within the
grace period, the app flushes capture, and the process exits 0. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import importlib.util
from types import FrameType
from typing import Any, Iterable

import uvicorn

from gitops_ml.serving.app import ModelFiles, ScoringApp
from gitops_ml.serving.settings import ServerSettings
from gitops_ml.serving.telemetry import log_event


def best_loop() -> str:
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def best_http() -> str:
    return "httptools" if importlib.util.find_spec("httptools") else "h11"


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
) -> None:
    """Serve until signalled. Blocks; returns after a graceful stop."""
    app = ScoringApp(settings, files=files, api_keys=api_keys)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop=loop or best_loop(),
        http=best_http(),
        lifespan="on",
        access_log=False,  # the app writes its own JSON access log
        proxy_headers=False,  # the app never reads the client address; the middleware cost ~10 %
        log_level="warning",
        timeout_graceful_shutdown=max(1, int(settings.grace_seconds)),
        timeout_keep_alive=75,  # above common load-balancer idle timeouts, so they close first
        server_header=False,
        date_header=False,
        h11_max_incomplete_event_size=64 * 1024,
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

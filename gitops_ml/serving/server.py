"""Run the scoring app under uvicorn (httptools + uvloop when installed) with graceful shutdown.

SIGTERM: readiness turns false at once; after `drain_seconds` (time for the endpoint to leave the
Service's endpoints) uvicorn stops accepting, finishes accepted and queued requests within the
grace period, the app flushes capture, and the process exits 0. A second signal stops at once.

Connections are bounded (`ConnectionLimits`): request line + headers in bytes, the time a head may
take to arrive, how long a connection may sit idle, and how many may be open, sized from the process's
file-descriptor limit; httptools gets them from protocol.py. The listening socket is bound before
anything is started or logged as ready, so a busy port is one error, not a half-started server.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import errno
import importlib.util
import resource
import socket
from dataclasses import dataclass
from types import FrameType
from typing import Any, Callable, Iterable

import uvicorn

from gitops_ml.errors import ConfigError
from gitops_ml.serving.app import ScoringApp
from gitops_ml.serving.model_files import ModelFiles
from gitops_ml.serving.settings import ServerSettings
from gitops_ml.serving.telemetry import log_event

MAX_HEAD_BYTES = 64 * 1024  # request line + headers: 431 above it (h11: its incomplete-event limit)
HEADER_TIMEOUT = 10.0  # from a request's first byte to the end of its headers, then the connection is closed
IDLE_TIMEOUT = 75.0  # keep-alive, and a new connection's wait for a request: above load balancers' idle timeouts
# open connections per process: beyond it an idle (or the oldest unfinished) one is closed, so unfinished
# heads can hold at most MAX_CONNECTIONS x MAX_HEAD_BYTES (128 MiB) for HEADER_TIMEOUT. Lowered to fit
# the file-descriptor limit (see connection_cap): past that limit accept() fails and nothing gets in.
MAX_CONNECTIONS = 2048
MIN_RESERVED_FDS = 64  # descriptors kept for everything but connections: model files, threads, logs, capture
BACKLOG = 4096  # pending connections the kernel queues for accept() (capped by net.core.somaxconn)
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-connection limits of the HTTP/1.1 server, in bytes and seconds."""

    max_head_bytes: int = MAX_HEAD_BYTES
    header_timeout: float = HEADER_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    max_connections: int = MAX_CONNECTIONS


def keep_large_allocations_returnable() -> None:
    """Fix glibc's mmap threshold at 128 KiB. By default glibc raises it after each large free (up to
    32 MiB), after which request bodies and the arrays decoded from them come from the heap, whose
    pages are seldom given back: measured with benchmarks/serving/memory.py, 44 concurrent 9.4 MB
    bodies peaked at 875 MiB with the moving threshold and 641 MiB with it fixed. No-op without glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(M_MMAP_THRESHOLD, 128 * 1024)


def connection_cap(wanted: int = MAX_CONNECTIONS) -> tuple[int, int]:
    """(open connections allowed, file-descriptor limit): the soft limit is raised to the hard one
    first (as servers do), and an eighth of it, at least MIN_RESERVED_FDS, is kept for the rest."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = min(hard, 1 << 20) if hard != resource.RLIM_INFINITY else 1 << 20
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    reserved = max(MIN_RESERVED_FDS, soft // 8)
    return max(1, min(wanted, soft - reserved)), soft


def bind(host: str, port: int) -> socket.socket:
    """The listening socket; ConfigError saying what holds the address when it cannot be bound."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}", hint="pass an address such as 127.0.0.1 or 0.0.0.0") from exc
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        hint = {
            errno.EADDRINUSE: f"another process listens on port {port}: stop it, or pass another port",
            errno.EACCES: f"port {port} needs privileges: pass a port above 1023",
            errno.EADDRNOTAVAIL: f"{host} is not an address of this machine",
        }.get(exc.errno or 0, "")
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint=hint) from exc
    sock.set_inheritable(True)
    return sock


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
    exit_on_init_failure: bool = False,
    announce: Callable[[int], None] | None = None,
) -> None:
    """Serve until signalled. Blocks; returns after a graceful stop.

    Raises ConfigError when the address cannot be bound, LoadError when the model files cannot be
    used, and, with `exit_on_init_failure` (`gitops-ml serve`), the located error of a score.py that
    failed to import or whose init() raised; the image keeps serving unready instead, with the error
    in /readyz and the log. `announce` is called with the bound port once the address is held.
    """
    app = ScoringApp(settings, files=files, api_keys=api_keys)
    keep_large_allocations_returnable()
    cap, fd_limit = connection_cap(limits.max_connections)
    limits = dataclasses.replace(limits, max_connections=cap)
    sock = bind(settings.host, settings.port)
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
        backlog=BACKLOG,
    )
    server = DrainingServer(config, app, drain_seconds)
    if exit_on_init_failure:
        app.on_init_failure = lambda: setattr(server, "should_exit", True)
    port = sock.getsockname()[1]
    if announce is not None:
        announce(port)
    log_event(
        "info",
        "starting",
        model=settings.model_name,
        version=settings.model_version,
        address=f"http://{settings.host}:{port}{settings.path_prefix}",
        auth=settings.auth_enabled,
        max_connections=cap,
        fd_limit=fd_limit,
        body_budget_bytes=settings.body_budget,
    )
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    if app.init_failure is not None and exit_on_init_failure:
        raise app.init_failure
    if not server.started:
        raise ConfigError(f"could not serve on {settings.host}:{port}")

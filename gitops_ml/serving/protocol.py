"""Connection limits that uvicorn's httptools protocol lacks: a cap on the request head (431), a
deadline for the head once its first byte arrives, an idle timeout for a connection that has not
started a request, a cap on open connections that keeps room for probes, a bound on pipelined
requests, and closes that let the client read its answer (the server answers, stops writing, drains
what is still on its way for a bounded time, then closes, so the client's kernel never turns unread
bytes into a reset). Below the ASGI app: it never looks at paths, bodies or keys.

Imports httptools: server.py imports it only when httptools is installed (h11 has its own limit)
and owns the numbers (`ConnectionLimits`).
"""

from __future__ import annotations

import asyncio
import secrets
from asyncio import TimerHandle
from typing import Any, ClassVar

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from gitops_ml.serving.telemetry import log_event

# After an answer sent before the request was read whole (431, or a 413/401/503 decided from the
# head) the client may still be sending: read and drop a little of it before closing, so the close is
# not a reset that makes the client's kernel discard the answer before the client reads it.
LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024
# requests parsed ahead of their answers on one connection: real clients pipeline a few at most, and
# each parsed request holds a cycle in memory. Beyond it the rest is not parsed: the requests already
# parsed are answered, the last with `connection: close`, and the connection is closed gently.
MAX_PIPELINED = 64
LOG_EVERY = 1000  # refused or evicted connections per warning in the log


class _HeadTooLarge(Exception):
    """Raised inside the parser's on_headers_complete to stop it: the head is over the limit."""


def limited_protocol(*, max_head_bytes: int, header_timeout: float, max_connections: int = 2048) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with these limits, as the class `uvicorn.Config(http=...)` takes.

    The idle timeout is uvicorn's `timeout_keep_alive`, applied from the connection's start too.
    """
    attributes = {"max_head_bytes": max_head_bytes, "header_timeout": header_timeout, "max_connections": max_connections}
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), attributes)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that bounds each request head in bytes and time, and idle connections.

    The head is counted per received chunk, not per parser callback: httptools accumulates a header
    that has not ended yet, so one endless header line would otherwise grow without bound. The
    common request (a whole head in one chunk) costs a length comparison and no timer.
    """

    max_head_bytes: ClassVar[int]  # set by limited_protocol()
    header_timeout: ClassVar[float]
    max_connections: ClassVar[int]
    _refusals: ClassVar[int] = 0
    _evictions: ClassVar[int] = 0

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any], _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_message = False  # between on_message_begin and on_message_complete
        self._in_head = False  # between on_message_begin and on_headers_complete
        self._begun = 0  # requests begun within the chunk being parsed
        self._chunk_bytes = 0
        self._head_bytes = 0  # of the current head, up to the last chunk (never more than were sent)
        self._head_timer: TimerHandle | None = None
        self._too_large = False
        self._refused = False  # answered 431: what still arrives is dropped
        self._dropped = 0
        self._linger_timer: TimerHandle | None = None
        self._abusive = False  # trailers over the head limit: close
        self._pipeline_full = False  # MAX_PIPELINED reached: nothing more is parsed
        self._trailer_bytes = 0
        self._idle_deadline = 0.0
        self._head_since = 0.0  # when the unfinished head's first byte came
        self._idle_since = 0.0  # when the connection opened or its last answer went
        self._gentle = _GentleTransport(self)

    # --- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._idle_since = self.loop.time()
        if len(self.connections) > self.max_connections and not self._make_room():
            transport.close()
            return
        # uvicorn arms keep-alive only after a response: a connection that never sends would stay
        self._arm_idle(self.timeout_keep_alive)

    def _make_room(self) -> bool:
        """At the cap, close an idle connection, else the oldest one still sending its head (what a
        flood holds open), so a probe's new connection gets in; False when every other connection
        is being answered (then this one is closed before a byte is read)."""
        cls = LimitedHttpToolsProtocol
        idle: LimitedHttpToolsProtocol | None = None  # the longest idle
        oldest: LimitedHttpToolsProtocol | None = None  # the longest in its head
        for c in self.connections:
            if c is self or not isinstance(c, LimitedHttpToolsProtocol) or c.transport.is_closing():
                continue
            if c._idle():
                if idle is None or c._idle_since < idle._idle_since:
                    idle = c
            elif c._in_head and (c.cycle is None or c.cycle.response_complete) and (oldest is None or c._head_since < oldest._head_since):
                oldest = c
        victim = idle or oldest
        counter = "_evictions" if victim is not None else "_refusals"
        count = getattr(cls, counter)
        if count % LOG_EVERY == 0:
            what = "an idle or unfinished connection is closed for each new one" if victim is not None else "new connections are closed at once"
            log_event("warning", f"at the cap of open connections: {what}", limit=self.max_connections, evicted=cls._evictions, refused=cls._refusals)
        setattr(cls, counter, count + 1)
        if victim is None:
            return False
        victim.transport.close()
        return True

    def _idle(self) -> bool:
        return not self._in_message and (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing()

    def _arm_idle(self, seconds: float) -> None:
        self._idle_deadline = self.loop.time() + seconds
        self.timeout_keep_alive_task = self.loop.call_later(max(0.0, seconds), self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        self._unset_keepalive_if_required()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            self._dropped += len(data)
            if self._dropped > LINGER_BYTES:
                self._abort()
            return
        if self._pipeline_full:
            # what follows the last parsed request is not read: the requests parsed are answered,
            # then the connection closes gently (a cycle reading its body may resume reading)
            self._dropped += len(data)
            self.flow.pause_reading()
            return
        self._unset_keepalive_if_required()
        was_in_message = self._in_message
        self._begun = 0
        self._chunk_bytes = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._abusive:
                self._abort()
                return
            if self._pipeline_full:
                self.flow.pause_reading()
                return
            if self._too_large:
                self._refuse_head()
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head:
            if not self._begun:  # the whole chunk is more of this head
                self._head_bytes += len(data)
            elif self._begun == 1 and not was_in_message:  # the head began this chunk and had it to itself
                self._head_bytes = len(data)
            else:  # it began after another request in this chunk: count what the parser handed over
                self._head_bytes = self._parsed_head_bytes()
            if self._head_bytes > self.max_head_bytes:
                self._refuse_head()
                return
            if self._head_timer is None:
                self._head_since = self.loop.time()
                self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)
        elif (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
            # nothing is being answered (blank lines, or the rest of a body already answered): still
            # idle, and the idle deadline does not move, so trickled bytes cannot hold the connection
            self._arm_idle(self._idle_deadline - self.loop.time())

    # --- parser callbacks (per request: the base is called directly, a little cheaper than super()) --

    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)
        self._in_message = self._in_head = True
        self._head_bytes = self._trailer_bytes = 0
        self._begun += 1

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:  # a trailer, after a chunked body: bounded like the head
            self._trailer_bytes += len(name) + len(value) + 4
            if self._trailer_bytes > self.max_head_bytes:
                self._abusive = True
                raise _HeadTooLarge
        HttpToolsProtocol.on_header(self, name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        limit = self.max_head_bytes
        # a head that began in this chunk is at most the chunk; only a longer one is counted exactly
        if (self._chunk_bytes > limit or not self._begun) and self._parsed_head_bytes() > limit:
            self._too_large = True
            raise _HeadTooLarge
        previous = self.cycle
        HttpToolsProtocol.on_headers_complete(self)
        cycle = self.cycle
        if cycle is not None:
            cycle.transport = self._gentle  # type: ignore[assignment]  # its close() lingers when it must
        if len(self.pipeline) > MAX_PIPELINED:
            # this request is not served: the ones before it are, the last of them closing the connection
            self.pipeline.popleft()
            self.cycle = previous
            if self.pipeline:
                self.pipeline[0][0].keep_alive = False
            elif previous is not None:
                previous.keep_alive = False
            self._pipeline_full = True
            log_event("warning", f"more than {MAX_PIPELINED} pipelined requests: those parsed are answered, then the connection is closed")
            raise _HeadTooLarge

    def on_response_complete(self) -> None:
        if self._refused:  # closing gently: no pipelined request starts, no keep-alive
            self.server_state.total_requests += 1
            return
        HttpToolsProtocol.on_response_complete(self)
        if self._pipeline_full:
            self.flow.pause_reading()  # uvicorn resumes reading after each answer
        if self.timeout_keep_alive_task is not None:  # uvicorn armed keep-alive: its deadline is ours too
            self._idle_since = self.loop.time()
            self._idle_deadline = self._idle_since + self.timeout_keep_alive

    def on_message_complete(self) -> None:
        self._in_message = False
        HttpToolsProtocol.on_message_complete(self)

    # --- limits ------------------------------------------------------------------------------

    def _parsed_head_bytes(self) -> int:
        # the request line and header lines as sent, give or take optional whitespace
        return len(self.url) + 16 + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # we stopped reading (earlier pipelined requests wait): not the client's delay
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)
            return
        self._abort()

    def _abort(self) -> None:
        """Close now. Cycles still running are told first: an answer written after close() and before
        connection_lost would raise inside the app."""
        for cycle in (self.cycle, *(c for c, _ in self.pipeline)):
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        self.pipeline.clear()
        self.transport.close()

    def close_gently(self) -> None:
        """A cycle's close(): at once when the client has sent nothing more, else after answering it
        stops writing and drops what still arrives, for LINGER_SECONDS or LINGER_BYTES at most."""
        transport = self.transport
        if transport.is_closing() or self._refused:
            return
        if not self._in_message and not self._pipeline_full:
            transport.close()
            return
        self._start_linger()

    def _start_linger(self) -> None:
        self._refused = True
        self._cancel_head_timer()
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger_timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _refuse_head(self) -> None:
        self._cancel_head_timer()
        self._refused = True
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # an earlier pipelined request is still being answered: a 431 now would cut into its response
            self.transport.close()
            return
        request_id = secrets.token_hex(8)
        limit = self.max_head_bytes
        body = orjson.dumps(
            {
                "error": "headers_too_large",
                "message": f"the request line and headers are over the limit of {limit} bytes",
                "request_id": request_id,
            }
        )
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )
        log_event("warning", "request head over the limit: answered 431 and closed", request_id=request_id, limit_bytes=limit)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger_timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)


class _GentleTransport:
    """The transport as a request cycle sees it: close() is the protocol's close_gently()."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: LimitedHttpToolsProtocol) -> None:
        self._protocol = protocol

    def write(self, data: bytes) -> None:
        self._protocol.transport.write(data)

    def close(self) -> None:
        self._protocol.close_gently()

    def is_closing(self) -> bool:
        return self._protocol.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._protocol.transport, name)

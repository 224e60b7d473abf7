"""Scoring request bodies: reading them within a deadline and a byte budget, and decoding them into
what run() receives. Memory is bounded by bytes, not by counting requests: a body holds the budget for
what it has sent while it arrives and for its decoded inputs while it waits, and the budget is sized
from the pod's memory limit (settings.body_budget). Bodies are decoded one at a time off the loop.
Knows nothing of routes, keys or workers.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import numpy as np
import orjson
import pandas as pd

from gitops_ml.serving.decoding import InputError, RequestDecoder
from gitops_ml.serving.scoring import error_body

Receive = Callable[[], Awaitable[dict[str, Any]]]

_NAN_TOKENS = (b"NaN", b"Infinity")
# what parsed JSON (Python lists, dicts, floats) costs per byte of the body it came from
PY_OBJECT_FACTOR = 11
OBJECT_CELL_BYTES = 64  # a pandas object cell: the pointer and a small Python object


class Disconnected(Exception):
    """The client closed the connection before its body arrived."""


class TooSlow(Exception):
    """The body did not arrive within the body timeout."""


class OverBudget(Exception):
    """The body would take the byte budget past its limit."""


class ByteBudget:
    """Bytes admitted scoring bodies may cost at once. Loop thread only.

    When nothing is held, one body is let in whatever its size, so a body the size limit accepts can
    always be served alone.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def room_for(self, size: int) -> bool:
        return self.used == 0 or self.used + size <= self.limit

    def hold(self) -> "Hold":
        return Hold(self)


class Hold:
    """One request's share of the budget, grown while its body arrives and reset once it is decoded."""

    __slots__ = ("budget", "amount")

    def __init__(self, budget: ByteBudget) -> None:
        self.budget = budget
        self.amount = 0

    def grow(self, size: int) -> bool:
        budget = self.budget
        if budget.used > self.amount and budget.used + size > budget.limit:
            return False
        budget.used += size
        self.amount += size
        return True

    def reset(self, size: int) -> None:
        """Hold `size` bytes from now on (decoded inputs), past the limit if need be: it is already in memory."""
        self.budget.used += size - self.amount
        self.amount = size

    def release(self) -> None:
        self.budget.used -= self.amount
        self.amount = 0


class DecodeLane:
    """Large bodies decoded one at a time on a thread of their own, and the next one handed over only
    from the event loop after the previous one's result came back.

    Parsing a body holds the interpreter lock for the whole parse (orjson is one C call), and uvloop
    takes the lock once per callback: with bodies queued back to back, every probe and every read would
    wait behind parse after parse. Handing over from the loop gives it one uncontended turn (its I/O
    polled, its callbacks run) between two parses. Loop thread only, but for the parses themselves.
    """

    def __init__(self) -> None:
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="gitops-ml-decode")
        self.waiting: collections.deque[tuple[asyncio.Future[Any], Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self.busy = False

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiting.append((future, function, args))
        if not self.busy:
            self._next()
        return await future

    def _next(self) -> None:
        while self.waiting and self.waiting[0][0].done():  # its request was cancelled (client gone)
            self.waiting.popleft()
        if not self.waiting:
            self.busy = False
            return
        self.busy = True
        future, function, args = self.waiting.popleft()
        loop = asyncio.get_running_loop()
        work = self.executor.submit(function, *args)
        work.add_done_callback(lambda done: loop.call_soon_threadsafe(self._finished, future, done))

    def _finished(self, future: asyncio.Future[Any], done: concurrent.futures.Future[Any]) -> None:
        if not future.done():
            error = done.exception()
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(done.result())
        # not now: after the loop's next poll, so what waits for I/O runs before the next parse
        asyncio.get_running_loop().call_soon(self._next)

    def close(self) -> None:
        self.executor.shutdown(wait=False)


async def read_body(receive: Receive, limit: int, hold: Hold) -> bytes | None:
    """The whole body, or None once it passes `limit` (the rest is not buffered); Disconnected when the
    client goes away first, OverBudget when the budget has no room for what arrived."""
    message = await receive()
    if message["type"] != "http.request":
        raise Disconnected()
    body: bytes = message.get("body", b"")
    if len(body) > limit:
        return None
    if not hold.grow(len(body)):
        raise OverBudget()
    if not message.get("more_body"):
        return body
    chunks, size = [body], len(body)
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise Disconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        if not hold.grow(len(chunk)):
            raise OverBudget()
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def read_body_in_time(receive: Receive, limit: int, hold: Hold, seconds: float) -> bytes | None:
    """read_body with a deadline: TooSlow for a client that stalls mid-upload (it gets 408)."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    assert task is not None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    # a timer, not asyncio.wait_for: no extra task per request on the hot path
    timer = loop.call_later(seconds, expire)
    try:
        return await read_body(receive, limit, hold)
    except asyncio.CancelledError:
        if not expired:
            raise
        uncancel = getattr(task, "uncancel", None)
        if uncancel is not None:
            uncancel()
        raise TooSlow() from None
    finally:
        timer.cancel()


@dataclass(frozen=True)
class Decoded:
    """A body as run() takes it, and the bytes its inputs hold."""

    data: Any
    held: int
    form: Any = None  # a protocol request's inputs as a /score body holds them (what capture records)


@dataclass(frozen=True)
class Refusal:
    status: int
    body: bytes
    parsed: bool = False  # the body was JSON (the schema refused it), so it can be captured as is
    form: Any = None  # a protocol request the schema refused, as the /score body it stands for (captured so)


def decode_body(raw: bytes, decoder: RequestDecoder | None, single_input: str | None, request_id: str) -> Decoded | Refusal:
    """The body as run() takes it, or the 400/422 answer that names what did not fit."""
    try:
        parsed = orjson.loads(raw)  # integers beyond 64 bits come back as floats, as in JavaScript
    except orjson.JSONDecodeError as exc:
        return Refusal(400, json_error(raw, exc, request_id))
    if decoder is None:
        return Decoded(parsed, PY_OBJECT_FACTOR * len(raw))
    try:
        inputs = decoder.decode(parsed, raw=raw)
    except InputError as exc:
        return Refusal(exc.status, error_body("invalid_input", exc.message, request_id, field=exc.field, expected=exc.expected), parsed=True)
    del parsed  # the Python objects of arrays and tables go now, not when the request ends
    held = held_bytes(inputs.values(), len(raw))
    return Decoded(inputs[single_input] if single_input is not None and len(inputs) == 1 else inputs, held)


def held_bytes(values: Any, raw_size: int) -> int:
    """About what decoded inputs hold in memory: arrays and tables exactly, plain JSON by its body's size."""
    total, plain = 0, False
    for value in values:
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif isinstance(value, pd.DataFrame):
            total += int(value.memory_usage(index=True, deep=False).sum())
            total += OBJECT_CELL_BYTES * len(value) * sum(1 for dtype in value.dtypes if dtype.kind == "O")
        elif isinstance(value, (bytes, str)):
            total += len(value)
        else:
            plain = True
    return total + (PY_OBJECT_FACTOR * raw_size if plain else 0)


def json_error(raw: bytes, exc: orjson.JSONDecodeError, request_id: str) -> bytes:
    """The 400 body for what orjson refused; a bare NaN or Infinity is named as such."""
    if any(token in raw for token in _NAN_TOKENS):
        try:
            json.loads(raw, parse_constant=_refuse_constant)
        except _ConstantError as found:
            return error_body("invalid_json", f"{found.constant} is not allowed: JSON numbers must be finite", request_id, field=found.constant)
        except (ValueError, RecursionError):
            pass
    return error_body("invalid_json", f"malformed JSON: {exc}", request_id)


class _ConstantError(ValueError):
    def __init__(self, constant: str) -> None:
        super().__init__(constant)
        self.constant = constant


def _refuse_constant(constant: str) -> Any:
    raise _ConstantError(constant)

"""The score.py contract and admission control: load the script, call init() once, run(data) on
worker threads behind a bounded queue, group requests into batches, time out slow runs.

What `run` receives: one named input -> that decoded value; several -> a dict {name: value}.
With batching enabled, `run` receives a list of those (one per request) and returns a list of
results in the same order. The event loop never runs score.py code, so a hanging `run` costs a
worker, never the server: the caller gets 504 and a fresh worker takes the slot.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
import queue
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Sequence

import numpy as np
import orjson
import pandas as pd

from gitops_ml.errors import LoadError, Location
from gitops_ml.serving.contract import ContractProblem, init_problem, run_problem, signature_of
from gitops_ml.serving.decoding import InputError
from gitops_ml.serving.telemetry import Metrics, log_event

Outcome = tuple[int, bytes]
DELIVERY_DELAY = 0.002  # seconds an answer may wait for the worker's next job before it is handed back
DELIVERY_MAX = 64
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def load_script(path: Path, input_names: Sequence[str] = (), *, batch: bool = False) -> ModuleType:
    """Import score.py as module `score` with its directory on sys.path (for helper modules), and check
    that init() and run(data) can be called as the server calls them (LoadError located at the def)."""
    directory = str(path.parent.resolve())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location("score", path)
    if spec is None or spec.loader is None:
        raise LoadError(f"cannot import {path.name}", location=Location(display_path(path)))
    module = importlib.util.module_from_spec(spec)
    sys.modules["score"] = module
    spec.loader.exec_module(module)
    run = getattr(module, "run", None)
    if not callable(run):
        raise LoadError(f"{path.name} defines no run(data) function", location=Location(display_path(path)), hint="add `def run(data):` returning the prediction")
    init = getattr(module, "init", None)
    checks: list[tuple[Callable[..., Any], ContractProblem | None]] = []
    run_sig = signature_of(run, "run")
    checks.append((run, run_problem(run_sig, input_names, batch=batch) if run_sig else None))
    if callable(init):
        init_sig = signature_of(init, "init")
        checks.append((init, init_problem(init_sig) if init_sig else None))
    for function, problem in checks:
        if problem is not None:
            code = getattr(function, "__code__", None)
            where = Location(display_path(Path(code.co_filename)), code.co_firstlineno, 1) if code else Location(display_path(path))
            raise LoadError(problem.message, location=where, hint=problem.hint)
    return module


def display_path(path: Path) -> str:
    """`path` relative to the working directory when it is below it (as a user typed it), else absolute."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative


def script_failure(exc: BaseException, model_dir: Path, what: str) -> LoadError:
    """Any failure of importing score.py or of init() as a LoadError located at the model's deepest frame."""
    if isinstance(exc, LoadError):
        return exc
    where: Location | None = None
    root = str(model_dir.resolve())
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(root + os.sep):
            where = Location(display_path(Path(frame.filename)), frame.lineno or 0, (getattr(frame, "colno", None) or 0) + 1)
    if where is None and isinstance(exc, SyntaxError) and exc.filename:
        where = Location(display_path(Path(exc.filename)), exc.lineno or 0, exc.offset or 1)
    hint = ""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        package = exc.name.split(".")[0]
        hint = (f"this Python has no module {package!r}: list its distribution in the model's requirements, or install "
                "them here (pip install -r requirements.txt); `gitops-ml serve` and `predict` without --env-manager local "
                "make the model's own environment from them")
    error = LoadError(f"{what} failed: {type(exc).__name__}: {exc}", location=where, hint=hint)
    error.__cause__ = exc
    return error


def encode_output(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def _default(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="records")
    if isinstance(value, (pd.Series, pd.Index)):
        return value.tolist()
    if isinstance(value, pd.Timestamp):  # a DataFrame's date-time cells; orjson takes datetime, not its subclass
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):  # non-contiguous or object arrays orjson does not take natively
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        # binary outputs travel as the inputs do: base64 strings
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"run() returned a {type(value).__name__}, which is not JSON-serialisable")


def error_body(code: str, message: str, request_id: str, **extra: Any) -> bytes:
    return orjson.dumps({"error": code, "message": message, "request_id": request_id, **extra})


class Rejected(Exception):
    """Raised by `submit` when the queue is full: the caller answers at once."""


@dataclass
class AdmissionLimits:
    max_concurrent: int = 1
    queue_size: int = 10
    queue_timeout: float = 5.0
    request_timeout: float = 5.0
    batch: bool = False
    batch_max_size: int = 32
    batch_max_wait: float = 0.002


class Job:
    """One admitted request: its decoded input, the future its handler awaits, and its timer."""

    __slots__ = ("data", "request_id", "future", "enqueued", "started", "cancelled", "answered_early", "timer", "worker")

    def __init__(self, data: Any, request_id: str, future: asyncio.Future[Outcome], enqueued: float) -> None:
        self.data = data
        self.request_id = request_id
        self.future = future
        self.enqueued = enqueued
        self.started = 0.0
        self.cancelled = False
        self.answered_early = False  # answered 503/504 by a deadline before its worker handed it back
        self.timer: asyncio.TimerHandle | None = None
        self.worker: Worker | None = None


class Worker:
    """A thread that runs jobs; `retired` when a run overran its timeout (it exits when that run ends)."""

    __slots__ = ("thread", "busy", "retired", "started", "jobs")

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.busy = 0
        self.retired = False
        self.started = 0.0  # when the running call began
        self.jobs: list[Job] = []  # the jobs of the running call


class Scorer:
    """Admission control in front of score.run: at most `capacity` requests in the system."""

    def __init__(self, run: Callable[[Any], Any], limits: AdmissionLimits, metrics: Metrics, loop: asyncio.AbstractEventLoop) -> None:
        self.run = run
        self.limits = limits
        self.metrics = metrics
        self.loop = loop
        per_worker = limits.batch_max_size if limits.batch else 1
        self.capacity = limits.max_concurrent * per_worker + limits.queue_size
        self.queue: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self.outbox: list[Job] = []
        self.pending = 0  # jobs admitted and not yet handed back by a worker (loop thread only)
        self.answered_early = 0  # of those, the ones a deadline already answered
        self.arriving = 0  # scoring requests being read/decoded; a batch waits only for these
        self.decoding = 0  # of those, the ones whose body has arrived: they count against the capacity
        self.workers: list[Worker] = []
        self.spare_workers = limits.max_concurrent  # replacements allowed for workers stuck in run()
        self.stopping = False

    # --- loop thread ------------------------------------------------------------------------

    def start(self) -> None:
        for _ in range(self.limits.max_concurrent):
            self._spawn()

    def _spawn(self) -> None:
        worker = Worker()
        worker.thread = threading.Thread(target=self._work, args=(worker,), name="gitops-ml-run", daemon=True)
        self.workers.append(worker)
        worker.thread.start()

    def submit(self, data: Any, request_id: str) -> Job:
        if self.pending >= self.capacity or self.stopping:
            raise Rejected()
        loop = self.loop
        job = Job(data, request_id, loop.create_future(), time.monotonic())
        job.timer = loop.call_later(self.limits.queue_timeout, self._queue_deadline, job)
        self.pending += 1
        # Jobs reach the workers once per loop iteration, not one by one: every hand-off can wake
        # a worker thread, and on a busy core each wake-up costs two context switches.
        self.outbox.append(job)
        if len(self.outbox) == 1:
            loop.call_soon(self._hand_off)
        return job

    def _hand_off(self) -> None:
        jobs, self.outbox = self.outbox, []
        put = self.queue.put
        for job in jobs:
            put(job)

    def _queue_deadline(self, job: Job) -> None:
        if job.future.done():
            return
        if not job.started:
            job.cancelled = True  # the worker skips it; it stays counted until dequeued, so memory is bounded
            self._answered_early(job)
            self.metrics.reject("queue_timeout")
            job.future.set_result((503, error_body("queue_timeout", f"waited {self.limits.queue_timeout:g} s in the queue", job.request_id)))
            return
        remaining = job.started + self.limits.request_timeout - time.monotonic()
        if remaining > 0:
            job.timer = self.loop.call_later(remaining, self._run_deadline, job)
        else:
            self._run_deadline(job)

    def _run_deadline(self, job: Job) -> None:
        if job.future.done():
            return
        self._answered_early(job)
        job.future.set_result((504, error_body("timeout", f"run() did not answer within {self.limits.request_timeout:g} s", job.request_id)))
        log_event("error", "run() timed out", request_id=job.request_id, timeout_seconds=self.limits.request_timeout)
        worker = job.worker
        if worker is not None and worker.busy and not worker.retired and self.spare_workers > 0:
            # The stuck thread cannot be killed, but a fresh one keeps the queue moving. Spare
            # replacements are bounded, so threads (and memory) stay bounded too.
            worker.retired = True
            self.spare_workers -= 1
            self._spawn()

    def _answered_early(self, job: Job) -> None:
        if not job.answered_early:
            job.answered_early = True
            self.answered_early += 1

    def _deliver(self, jobs: list[Job], outcomes: list[Outcome | None], worker: Worker) -> None:
        self.pending -= len(jobs)
        for job, outcome in zip(jobs, outcomes):
            if job.answered_early:
                self.answered_early -= 1
            if job.timer is not None:
                job.timer.cancel()
            if outcome is not None and not job.future.done():
                job.future.set_result(outcome)
        if worker.retired and worker in self.workers:
            self.workers.remove(worker)
            self.spare_workers += 1

    def gauges(self) -> dict[str, float]:
        """Requests being scored and waiting, not counting those a deadline already answered."""
        running = sum(1 for w in self.workers for j in w.jobs if not j.future.done())
        return {"in_flight": running, "queue_depth": max(0, self.pending - self.answered_early - running), "arriving": self.arriving}

    @property
    def usable(self) -> bool:
        """False while every worker is stuck in a run() past its timeout and none can replace them:
        then readiness goes false, so the Service sends requests to other replicas."""
        if self.spare_workers > 0:
            return True
        deadline = time.monotonic() - self.limits.request_timeout
        return any(not w.retired and not (w.busy and w.started < deadline) for w in self.workers)

    async def stop(self, timeout: float) -> None:
        """Let queued jobs finish, then end the workers (shutdown, after the server stopped accepting)."""
        deadline = time.monotonic() + timeout
        # jobs a deadline already answered (a hung run's 504) have nobody left to wait for
        while self.pending - self.answered_early > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        self.stopping = True
        for _ in self.workers:
            self.queue.put(None)

    # --- worker threads -----------------------------------------------------------------------

    def _work(self, worker: Worker) -> None:
        get, get_nowait = self.queue.get, self.queue.get_nowait
        batch = self.limits.batch
        job: Job | None = None
        while not worker.retired:
            if job is None:
                job = get()
                if job is None:
                    return
            done_jobs: list[Job] = []
            done_outcomes: list[Outcome | None] = []
            first_done = 0.0
            # Keep taking queued jobs and hand the answers back together: each wake-up of the
            # event loop costs context switches and a GIL hand-over, which would otherwise cost
            # as much as a small model's predict. Answers wait at most DELIVERY_DELAY for this.
            while job is not None:
                jobs = self._gather(job) if batch else [job]
                done_jobs += jobs
                done_outcomes += self._run_jobs(worker, jobs, batch)
                now = time.monotonic()
                first_done = first_done or now
                job = None
                if worker.retired or now - first_done > DELIVERY_DELAY or len(done_jobs) >= DELIVERY_MAX:
                    break
                try:
                    job = get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self.queue.put(None)  # a stop sentinel: deliver, then take it again
                    job = None
                    break
            try:
                self.loop.call_soon_threadsafe(self._deliver, done_jobs, done_outcomes, worker)
            except RuntimeError:  # loop closed during a forced exit
                return

    def _run_jobs(self, worker: Worker, jobs: list[Job], batch: bool) -> list[Outcome | None]:
        live = [j for j in jobs if not j.cancelled]
        if not live:
            return [None] * len(jobs)
        now = time.monotonic()
        for j in live:
            j.worker = worker
            j.started = now
        worker.started, worker.jobs, worker.busy = now, live, len(live)
        try:
            if batch:
                by_job = dict(zip(map(id, live), self._run_batch(live)))
                return [by_job.get(id(j)) for j in jobs]
            return [self._run_one(jobs[0])]
        finally:
            worker.busy, worker.jobs = 0, []

    def _gather(self, first: Job) -> list[Job]:
        limits = self.limits
        jobs = [first]
        deadline = time.monotonic() + limits.batch_max_wait
        get_nowait, get = self.queue.get_nowait, self.queue.get
        while len(jobs) < limits.batch_max_size:
            try:
                job = get_nowait()
            except queue.Empty:
                # Wait only when more requests are on their way in: an idle server answers at once.
                remaining = deadline - time.monotonic()
                if self.arriving <= 0 or remaining <= 0:
                    break
                try:
                    job = get(timeout=remaining)
                except queue.Empty:
                    break
            if job is None:
                self.queue.put(None)  # a stop sentinel belongs to some worker: hand it back
                break
            jobs.append(job)
        return jobs

    def _run_one(self, job: Job) -> Outcome:
        try:
            return 200, encode_output(self.run(job.data))
        except BaseException as exc:  # noqa: BLE001 - any failure of user code is a 500 (or its 422)
            return self._failure(exc, job.request_id)

    def _run_batch(self, jobs: list[Job]) -> list[Outcome]:
        self.metrics.batch_sizes.observe(len(jobs))
        try:
            results = self.run([j.data for j in jobs])
            if isinstance(results, (np.ndarray, pd.Series)):
                results = list(results)
            if not isinstance(results, (list, tuple)) or len(results) != len(jobs):
                got = len(results) if isinstance(results, (list, tuple)) else type(results).__name__
                raise TypeError(f"run() received a batch of {len(jobs)} inputs and must return a list of {len(jobs)} results, got {got}")
        except Exception as exc:  # noqa: BLE001
            if len(jobs) > 1:
                # One bad input (an InputError, or any exception its decoding raised inside run)
                # must not fail its neighbours: score each alone, so only its own caller sees it.
                return [self._run_batch([job])[0] for job in jobs]
            return [self._failure(exc, j.request_id) for j in jobs]
        except BaseException as exc:  # noqa: BLE001 - SystemExit and the like from user code
            return [self._failure(exc, j.request_id) for j in jobs]
        outcomes = []
        for job, result in zip(jobs, results):
            try:
                outcomes.append((200, encode_output(result)))
            except TypeError as exc:
                outcomes.append(self._failure(exc, job.request_id))
        return outcomes

    def _failure(self, exc: BaseException, request_id: str) -> Outcome:
        if isinstance(exc, InputError):
            return exc.status, error_body("invalid_input", exc.message, request_id, field=exc.field, expected=exc.expected)
        log_event(
            "error",
            "run() raised",
            request_id=request_id,
            error=f"{type(exc).__name__}: {exc}",
            traceback="".join(traceback.format_exception(exc)),
        )
        return 500, error_body("internal", "run() failed; the server log has details under this request id", request_id)

"""score.py that raises, hangs or fails to load; a full queue; SIGTERM under a steady stream of
requests; capture files. All against real servers on 127.0.0.1."""

from __future__ import annotations

import concurrent.futures
import json
import re
import signal
import threading
from pathlib import Path

import httpx

from tests.serving.conftest import EXAMPLES, write_model

FLAKY = """
import threading
release = threading.Event()

def init():
    pass

def run(data):
    first = float(data[0][0])
    if first == 13:
        raise RuntimeError("secret internal detail")
    if first == 99:
        release.wait(60)  # hangs until the test process ends
    if first == 7:
        import time
        time.sleep(0.5)  # slow, but inside the timeout
    return {"n": len(data)}
"""


def test_run_that_raises_is_500_with_request_id_and_no_traceback(start_server, tmp_path: Path) -> None:
    server = start_server(write_model(tmp_path / "flaky", FLAKY))
    response = server.post({"data": [[13, 0, 0, 0]]})
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "internal" and body["request_id"] == response.headers["x-request-id"]
    assert "secret internal detail" not in response.text and "Traceback" not in response.text
    server.wait_until(lambda: body["request_id"] in server.stderr.read_text(), "the error log line", deadline=10)
    logged = next(json.loads(l) for l in server.stderr.read_text().splitlines() if body["request_id"] in l)
    assert logged["level"] == "error" and "secret internal detail" in logged["error"]
    assert server.post({"data": [[1, 2, 3, 4]]}).json() == {"n": 1}  # the server goes on


def test_run_that_hangs_is_504_and_the_server_keeps_answering(start_server, tmp_path: Path) -> None:
    server = start_server(write_model(tmp_path / "hangs", FLAKY), request_timeout=1, queue_timeout=1)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        hung = pool.submit(server.post, {"data": [[99, 0, 0, 0]]})
        server.wait_until(lambda: server.metric("gitops_ml_in_flight") == 1, "the hanging run to start", deadline=10)
        assert server.get("/healthz").status_code == 200  # the event loop is free while run() hangs
        assert hung.result(30).status_code == 504
    assert hung.result().json()["error"] == "timeout"
    # a fresh worker replaced the stuck one: scoring still works
    assert server.post({"data": [[1, 2, 3, 4]]}).status_code == 200


def test_init_that_fails_never_gets_ready(start_server, tmp_path: Path) -> None:
    model = write_model(
        tmp_path / "broken",
        "def init():\n    raise FileNotFoundError('model.bin is missing')\n\ndef run(data):\n    return 0\n",
    )
    server = start_server(model, ready=False)
    server.wait_until(lambda: "init() failed" in server.stderr.read_text(), "the init failure log line", deadline=30)
    ready = server.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "failed"
    assert ready.json()["error"].endswith("score.py:2:5: init() failed: FileNotFoundError: model.bin is missing")
    assert server.get("/healthz").status_code == 200
    scored = server.post({"data": [[1, 2, 3, 4]]})
    assert scored.status_code == 503 and "init() failed" in scored.json()["message"]
    assert "model.bin is missing" in server.stderr.read_text()


def test_full_queue_answers_at_once_with_retry_after(start_server, tmp_path: Path) -> None:
    server = start_server(
        write_model(tmp_path / "busy", FLAKY),
        max_concurrent=1,
        queue_size=1,
        reject_status=429,
        request_timeout=30,
        queue_timeout=30,
    )
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        running = pool.submit(server.post, {"data": [[7, 0, 0, 0]]})
        server.wait_until(lambda: server.metric("gitops_ml_in_flight") == 1, "the first run", deadline=10)
        queued = pool.submit(server.post, {"data": [[7, 0, 0, 0]]})
        server.wait_until(
            lambda: server.metric("gitops_ml_queue_depth") == 1 or queued.done(), "the second to queue", deadline=10
        )
        refused = server.post({"data": [[1, 0, 0, 0]]})
        assert running.result(30).status_code == 200
        assert queued.result(30).status_code == 200
    if refused.status_code != 200:  # the slot may have freed between the check and the post
        assert refused.status_code == 429
        assert refused.headers["retry-after"].isdigit()
        assert refused.json()["error"] == "overloaded"
        assert server.metric('gitops_ml_rejected_total{reason="queue_full"}') == 1


def test_sigterm_drains_without_failing_accepted_requests(start_server, tmp_path: Path) -> None:
    server = start_server(
        EXAMPLES / "iris",
        args=("--drain-seconds", "1"),
        capture_enabled=True,
        capture_sampling=1.0,
        max_concurrent=1,
        queue_size=16,
    )
    body = {"data": [[5.1, 3.5, 1.4, 0.2]]}
    statuses: list[int] = []
    failures: list[str] = []
    first_answers = threading.Barrier(5)
    # Plays the Service: once readiness is false the endpoint is removed and no new request is
    # sent; requests already sent (in flight or queued) must all be answered.
    removed = threading.Event()

    def stream() -> None:
        with httpx.Client(headers=server.headers, timeout=30) as client:
            waited = False
            while not removed.is_set():
                try:
                    response = client.post(server.url + "/score", json=body)
                except httpx.TransportError as exc:
                    failures.append(repr(exc))
                    return
                statuses.append(response.status_code)
                if not waited:
                    waited = True
                    first_answers.wait(30)

    threads = [threading.Thread(target=stream) for _ in range(4)]
    for t in threads:
        t.start()
    first_answers.wait(30)
    answered_before = len(statuses)
    server.process.send_signal(signal.SIGTERM)
    server.wait_until(lambda: server.get("/readyz").status_code == 503, "readiness to turn false", deadline=5)
    removed.set()
    assert server.process.wait(60) == 0
    for t in threads:
        t.join(30)
    assert not failures
    assert set(statuses) == {200} and len(statuses) > answered_before, statuses
    log = server.stderr.read_text()
    assert "draining" in log and '"stopped"' in log
    files = sorted(
        (server.keys_dir.parent / "capture-0" / "model=iris" / "version=1.2.3").glob("date=*/hour=*/*.jsonl")
    )
    assert files, "no capture file"
    records = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert len(records) == len(statuses)  # flushed on shutdown: every answered request captured
    assert records[0]["input"] == body and records[0]["output"] == {"predictions": [0]}
    assert {"request_id", "latency_ms", "model", "version", "time"} <= set(records[0])
    date, hour = files[0].parent.parent.name, files[0].parent.name
    assert re.fullmatch(r"date=\d{4}-\d{2}-\d{2}", date) and re.fullmatch(r"hour=\d{2}", hour)


def _raw_post(url: str, body: bytes, *, key: str = "", declared: int | None = None, auth: str = "") -> bytes:
    """One request over a plain socket (httpx refuses to send what these tests need to)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as s:
        auth = auth or f"Authorization: Bearer {key}"
        head = (
            f"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}\r\n"
            f"Content-Length: {len(body) if declared is None else declared}\r\n\r\n"
        ).encode()
        s.sendall(head + body)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                head_part, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head_part.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                if len(rest) >= length:
                    break
        return b"".join(chunks)


def test_bodies_json_cannot_carry_are_answered_400_and_counted(module_server_iris) -> None:
    server = module_server_iris
    before = server.metric('gitops_ml_requests_total{route="score",status="400"}')
    cases = [
        b"[" * 100_000,
        b'{"data":' + b"[" * 2000 + b"]" * 2000 + b"}",
        b'{"\\ud800":1}',
        b'{"data":[[1,2,3,4]],"x\\udfff":"a"}',
    ]
    for body in cases:
        response = server.post(content=body)
        assert response.status_code == 400, (body[:40], response.text)
        assert response.json()["error"] == "invalid_json"
    assert server.metric('gitops_ml_requests_total{route="score",status="400"}') == before + len(cases)
    assert "Exception in ASGI application" not in server.log()


def test_full_queue_answers_before_reading_the_body(start_server, tmp_path: Path) -> None:
    from tests.serving.conftest import KEY

    server = start_server(
        write_model(tmp_path / "busy", FLAKY), max_concurrent=1, queue_size=0, request_timeout=30, queue_timeout=30
    )
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(server.post, {"data": [[7, 0, 0, 0]]})
        server.wait_until(lambda: server.metric("gitops_ml_in_flight") == 1, "the first run", deadline=10)
        # 5 MB announced, none sent: a server that buffered first would wait for it
        answer = _raw_post(server.url, b"", key=KEY, declared=5_000_000)
        assert answer.startswith(b"HTTP/1.1 503"), answer[:200]
        assert b"retry-after" in answer.lower() and b'"overloaded"' in answer
        assert running.result(30).status_code == 200


def test_a_stalled_upload_gets_408_and_a_vanished_client_is_counted_not_answered(start_server) -> None:
    import socket
    from urllib.parse import urlsplit

    from tests.serving.conftest import KEY

    server = start_server(EXAMPLES / "iris", body_timeout=1)
    answer = _raw_post(server.url, b'{"data": [[1,', key=KEY, declared=1000)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"body_timeout"' in answer
    assert server.metric('gitops_ml_rejected_total{reason="body_timeout"}') == 1

    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port)) as s:
        s.sendall(
            f"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer {KEY}\r\nContent-Length: 100\r\n\r\n{{".encode()
        )
    server.wait_until(
        lambda: server.metric('gitops_ml_requests_total{route="score",status="499"}') == 1,
        "the disconnect to be counted",
        deadline=10,
    )
    assert server.metric('gitops_ml_requests_total{route="score",status="400"}') == 0


def test_hung_runs_make_the_replica_unready_until_a_worker_is_free(start_server, tmp_path: Path) -> None:
    server = start_server(
        write_model(tmp_path / "hangs", HANGS_ONCE), request_timeout=1, queue_timeout=1, max_concurrent=1
    )
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(server.post, {"data": [[99, 0, 0, 0]]})
        assert first.result(30).status_code == 504  # the spare worker replaces the stuck one
        second = pool.submit(server.post, {"data": [[99, 0, 0, 0]]})
        assert second.result(30).status_code == 504  # no spare left: every worker is stuck
        readyz = server.get("/readyz")
        assert readyz.status_code == 503 and readyz.json()["status"] == "stuck"
        assert server.metric("gitops_ml_ready") == 0
        assert server.metric("gitops_ml_in_flight") == 0 and server.metric("gitops_ml_queue_depth") == 0, (
            "answered requests are not in flight"
        )
        (tmp_path / "hangs" / "release").write_text("")  # the hung runs end
        server.wait_until(
            lambda: server.get("/readyz").status_code == 200, "readiness after the runs ended", deadline=30
        )
    assert server.post({"data": [[1, 2, 3, 4]]}).status_code == 200


HANGS_ONCE = """
import os, time
RELEASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "release")

def run(data):
    if float(data[0][0]) == 99:
        deadline = time.monotonic() + 60
        while not os.path.exists(RELEASE) and time.monotonic() < deadline:
            time.sleep(0.02)
    return {"n": len(data)}
"""


def test_one_failing_input_does_not_fail_its_batch_neighbours(start_server, tmp_path: Path) -> None:
    model = write_model(tmp_path / "batched", BATCH_BOMB)
    (model / "manifest.yaml").write_text("")  # the server reads batch settings from the environment
    server = start_server(
        model, batch_enabled=True, batch_max_size=16, batch_max_wait_ms=50, max_concurrent=1, queue_size=64
    )
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda i: server.post({"data": [[13 if i == 5 else i, 0, 0, 0]]}), range(12)))
    statuses = [a.status_code for a in answers]
    assert statuses[5] == 500 and statuses.count(200) == 11, statuses
    assert server.metric("gitops_ml_batch_size_count") >= 1


BATCH_BOMB = """
def run(batch):
    for item in batch:
        if float(item[0][0]) == 13:
            raise MemoryError("a decompression bomb stands in here")
    return [{"n": len(item)} for item in batch]
"""


def test_keys_tolerate_whitespace_around_them(module_server_iris) -> None:
    from tests.serving.conftest import KEY

    sample = (EXAMPLES / "iris" / "sample.json").read_bytes()
    for auth in (f"Authorization: Bearer\t{KEY}", f"X-Api-Key:  {KEY}  ", f"Authorization:   bearer   {KEY}  "):
        answer = _raw_post(module_server_iris.url, sample, auth=auth)
        assert answer.startswith(b"HTTP/1.1 200"), (auth, answer[:300])


def test_a_pretty_printed_body_is_captured_as_one_jsonl_record(start_server) -> None:
    server = start_server(EXAMPLES / "iris", capture_enabled=True, capture_sampling=1.0)
    pretty = json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]], "note": None}, indent=2).encode() + b"\r\n"
    assert server.post(content=pretty).status_code == 422  # "note" is not an input: refused, and captured as such
    assert server.post(content=b'{"data": [[5.1, 3.5, 1.4, 0.2]]').status_code == 400  # malformed JSON: not captured
    assert (
        server.post(content=json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]}, indent=2).encode() + b"\n").status_code == 200
    )
    assert server.stop() == 0
    files = sorted(
        (server.keys_dir.parent / "capture-0" / "model=iris" / "version=1.2.3").glob("date=*/hour=*/*.jsonl")
    )
    lines = [line for f in files for line in f.read_text().splitlines()]
    assert len(lines) == 2, lines
    refused, scored = (json.loads(line) for line in lines)
    assert refused["status"] == 422 and refused["input"] == {"data": [[5.1, 3.5, 1.4, 0.2]], "note": None}
    assert refused["output"]["error"] == "invalid_input" and refused["output"]["field"] == "note"
    assert scored["status"] == 200 and scored["input"] == {"data": [[5.1, 3.5, 1.4, 0.2]]} and scored["format"] == 1


def test_two_keys_in_one_request_are_refused_not_guessed(module_server_iris) -> None:
    from tests.serving.conftest import KEY, SECOND_KEY

    sample = (EXAMPLES / "iris" / "sample.json").read_bytes()
    for auth in (
        f"Authorization: Bearer {KEY}\r\nAuthorization: Bearer nope",
        f"X-Api-Key: {KEY}\r\nX-Api-Key: {SECOND_KEY}",
    ):
        answer = _raw_post(module_server_iris.url, sample, auth=auth)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert b"several Authorization or X-Api-Key headers" in answer


def test_a_huge_integer_beside_a_nan_looking_string_is_400(module_server_iris) -> None:
    body = b'{"data": [[1' + b"0" * 400 + b', 1, 1, 1]], "note": "NaN"}'
    answer = module_server_iris.post(content=body)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_json", answer.text
    assert "infinity" in answer.json()["message"]


def test_a_body_sent_to_a_route_that_reads_none_closes_the_connection(module_server_iris) -> None:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(module_server_iris.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        s.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\nab")
        got = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break  # the server closed it: the trickle cannot hold the connection
            got += chunk
    assert got.startswith(b"HTTP/1.1 405") and b"connection: close" in got.lower()


def test_sigterm_does_not_wait_for_a_hung_run_already_answered(start_server, tmp_path: Path) -> None:
    import time

    server = start_server(write_model(tmp_path / "hangs", FLAKY), request_timeout=1, queue_timeout=1)
    assert server.post({"data": [[99, 0, 0, 0]]}).status_code == 504
    started = time.monotonic()
    assert server.stop(timeout=60) == 0
    assert time.monotonic() - started < 15, "shutdown does not wait out the grace period for a 504'd run"

"""Admission under hostile load, against real servers: bodies in flight are bounded in bytes (surplus
max-size bodies are refused at once, memory stays within the budget), a body still arriving holds no
scoring slot, and an answer sent before the body was read reaches a client that is still sending."""

from __future__ import annotations

import concurrent.futures
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest

from gitops_ml.serving.settings import DECODE_FACTOR
from tests.serving.conftest import KEY, Server, write_model

SUM = "def run(data):\n    return {'rows': int(data.shape[0])}\n"
HANGS = """
import threading
release = threading.Event()

def run(data):
    if float(data[0][0]) == 99:
        release.wait(120)  # holds the only slot until the test process ends
    return {"rows": len(data)}
"""


def body_of(size: int) -> bytes:
    row = b"[5.1,3.5,1.4,0.2]"
    return b'{"data": [' + b",".join([row] * ((size - 12) // (len(row) + 1))) + b"]}"


def status_kib(server: Server, key: str) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(key)


def raw_post(server: Server, body: bytes) -> int:
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=120) as sock:
        sock.sendall(
            b"POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (KEY.encode(), len(body))
            + body
        )
        got = b""
        while b"\r\n" not in got:
            data = sock.recv(65536)
            if not data:
                return 0
            got += data
        return int(got.split(b" ", 2)[1])


def test_bodies_in_flight_are_bounded_in_bytes(start_server, tmp_path: Path) -> None:
    size = 3_000_000
    budget = 3 * size  # about one decoded body and a half (raw, then float64 rows: ~1.8x)
    server = start_server(
        write_model(tmp_path / "sum", SUM),
        max_concurrent=1,
        queue_size=20,
        max_body_bytes=4 * 1024 * 1024,
        body_budget_bytes=budget,
        queue_timeout=60,
        request_timeout=60,
    )
    baseline = status_kib(server, "VmRSS")
    body = body_of(size)
    gate = threading.Barrier(12)

    def send() -> int:
        gate.wait()
        return raw_post(server, body)

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        statuses = sorted(pool.map(lambda _: send(), range(12)))
    grown_mib = (status_kib(server, "VmHWM") - baseline) / 1024
    # one body decodes at a time (DECODE_FACTOR times its size at its peak) and the budget bounds the rest
    bound_mib = (DECODE_FACTOR * size + budget) / 2**20 + 64
    assert grown_mib < bound_mib, (
        f"peak RSS grew {grown_mib:.0f} MiB for 12 bodies of {size / 1e6:.0f} MB (bound {bound_mib:.0f} MiB)"
    )
    assert set(statuses) <= {200, 503} and statuses.count(200) >= 1, statuses
    assert statuses.count(503) >= 1, "bodies beyond the budget are refused at once"
    assert server.metric('gitops_ml_rejected_total{reason="body_budget"}') >= 1
    assert raw_post(server, body) == 200, "the budget is given back"


def test_a_body_still_arriving_holds_no_scoring_slot(start_server, tmp_path: Path) -> None:
    server = start_server(write_model(tmp_path / "sum", SUM), max_concurrent=1, queue_size=1, body_timeout=60)
    host, port = server.url.removeprefix("http://").split(":")
    slow = []
    try:
        for _ in range(6):  # slow uploads: their heads came, one byte of body a while
            sock = socket.create_connection((host, int(port)), timeout=30)
            sock.sendall(
                b"POST /score HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
                % KEY.encode()
            )
            slow.append(sock)
        server.wait_until(lambda: server.metric("gitops_ml_arriving") == 6, "the uploads to be under way")
        for _ in range(3):
            answer = server.post({"data": [[5.1, 3.5, 1.4, 0.2]]})
            assert answer.status_code == 200, answer.text
    finally:
        for sock in slow:
            sock.close()


@pytest.fixture
def busy(start_server, tmp_path: Path):  # type: ignore[no-untyped-def]
    server = start_server(
        write_model(tmp_path / "hangs", HANGS),
        max_concurrent=1,
        queue_size=0,
        reject_status=429,
        max_body_bytes=1_000_000,
        request_timeout=120,
        queue_timeout=120,
    )

    def hang() -> None:
        try:
            server.post({"data": [[99, 0, 0, 0]]}, timeout=300)
        except httpx.HTTPError:  # the server is stopped at the end of the test
            pass

    hung = threading.Thread(target=hang, daemon=True)
    hung.start()
    server.wait_until(lambda: server.metric("gitops_ml_in_flight") == 1, "the only slot to be taken")
    return server


@pytest.mark.parametrize(
    ("size", "headers", "status"),
    [
        (2_000_000, {"Authorization": f"Bearer {KEY}"}, 413),
        (900_000, {}, 401),
        (900_000, {"Authorization": f"Bearer {KEY}"}, 429),
    ],
    ids=["too-large", "no-key", "queue-full"],
)
def test_an_answer_sent_before_the_body_is_read_reaches_the_client(
    busy: Server, size: int, headers: dict[str, str], status: int
) -> None:
    body = body_of(size)
    for _ in range(5):  # urllib sends `Connection: close` and writes the whole body before it reads
        request = urllib.request.Request(
            busy.url + "/score", data=body, headers={"Content-Type": "application/json", **headers}
        )
        with pytest.raises(urllib.error.HTTPError) as answered:
            urllib.request.urlopen(request, timeout=30)
        assert answered.value.code == status
        answered.value.close()
    assert busy.get("/healthz").status_code == 200

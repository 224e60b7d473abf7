"""Connection limits of the real server (uvicorn + httptools on 127.0.0.1), driven over raw sockets:
an oversized request head gets 431 and a close without the server reading the rest, a head that
arrives too slowly and a connection that never starts a request are closed, and keep-alive and
pipelining still work."""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from gitops_ml.serving.protocol import MAX_PIPELINED
from tests.serving.conftest import START_DEADLINE, Server, free_port, write_model

LAUNCH = """
import sys
from gitops_ml.serving.server import ConnectionLimits, run_server
from gitops_ml.serving.settings import ServerSettings

model_dir, port, header_timeout, idle_timeout, max_connections = sys.argv[1:6]
settings = ServerSettings(model_name="echo", model_dir=model_dir, host="127.0.0.1", port=int(port), auth_enabled=False)
limits = ConnectionLimits(header_timeout=float(header_timeout), idle_timeout=float(idle_timeout), max_connections=int(max_connections))
run_server(settings, limits=limits)
"""
SCORE = "def run(data):\n    return {'rows': len(data)}\n"
LIMIT = 64 * 1024
HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
BIG = 32 * 1024 * 1024  # more than loopback socket buffers hold: a server that stops reading makes the sender fail


@pytest.fixture
def start_limited(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(
        *, header_timeout: float = 10.0, idle_timeout: float = 75.0, max_connections: int = 2048, fd_limit: int = 0
    ) -> Server:
        model = write_model(tmp_path / f"model-{len(started)}", SCORE)
        port = free_port()
        out, err = tmp_path / f"server-{len(started)}.out", tmp_path / f"server-{len(started)}.err"

        def limit_fds() -> None:  # as `ulimit -n` does: soft and hard limit
            if fd_limit:
                resource.setrlimit(resource.RLIMIT_NOFILE, (fd_limit, fd_limit))

        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    LAUNCH,
                    str(model),
                    str(port),
                    str(header_timeout),
                    str(idle_timeout),
                    str(max_connections),
                ],
                stdout=stdout,
                stderr=stderr,
                preexec_fn=limit_fds,
            )
        server = Server(process, f"http://127.0.0.1:{port}", out, err, tmp_path)
        started.append(server)
        server.wait_until(lambda: server.get("/readyz").status_code == 200, "readiness", START_DEADLINE)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(10)


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def rss_kib(server: Server) -> int:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def read_until_closed(sock: socket.socket, deadline: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes (EOF or reset), and whether it closed in time."""
    sock.settimeout(0.2)
    got = b""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return got, True
        if not data:
            return got, True
        got += data
    return got, False


def read_response(reader: Callable[[int], bytes], buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body from a socket, keeping what follows in `buffer`."""
    while b"\r\n\r\n" not in buffer:
        data = reader(65536)
        assert data, f"connection closed mid-response: {bytes(buffer)!r}"
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        data = reader(65536)
        assert data, "connection closed mid-body"
        rest += data
    buffer[:] = rest[length:]
    return int(lines[0].split()[1]), headers, rest[:length]


def send_in_background(sock: socket.socket, chunks: Iterator[bytes]) -> tuple[threading.Thread, list[int]]:
    """Send chunks until they run out or the server stops the connection; the count of bytes sent."""
    sent = [0]

    def pump() -> None:
        try:
            for chunk in chunks:
                sock.sendall(chunk)
                sent[0] += len(chunk)
        except OSError:  # reset or broken pipe: the server closed
            pass

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread, sent


def many_header_lines() -> Iterator[bytes]:
    yield HEAD
    line = b"X-Pad: " + b"a" * 1000 + b"\r\n"
    for _ in range(BIG // (len(line) * 64)):
        yield line * 64


def one_endless_header() -> Iterator[bytes]:
    yield HEAD + b"X-Pad: "
    for _ in range(BIG // 65536):
        yield b"a" * 65536


@pytest.mark.parametrize("chunks", [many_header_lines, one_endless_header], ids=["many-lines", "one-endless-line"])
def test_an_oversized_head_gets_431_and_a_close_without_being_read(
    start_limited, chunks: Callable[[], Iterator[bytes]]
) -> None:
    server = start_limited()
    before = rss_kib(server)
    with connect(server) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        thread, sent = send_in_background(sock, chunks())
        answer, closed = read_until_closed(sock, 20)
        thread.join(20)
    assert closed, "the server kept the connection open"
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    assert json.loads(body)["error"] == "headers_too_large"
    assert not thread.is_alive() and sent[0] < BIG // 2, f"the server read {sent[0]} bytes of a head it had refused"
    assert rss_kib(server) - before < 16 * 1024, "the refused head grew the server's memory"
    assert server.get("/healthz").status_code == 200


def test_a_head_over_the_limit_in_one_piece_gets_431(start_limited) -> None:
    server = start_limited()
    with connect(server) as sock:
        sock.sendall(HEAD + b"X-Pad: " + b"a" * (LIMIT + 100) + b"\r\n\r\n")
        answer, closed = read_until_closed(sock, 10)
    assert closed and answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_a_head_just_under_the_limit_is_served(start_limited) -> None:
    server = start_limited()
    with connect(server) as sock:
        sock.sendall(HEAD + b"X-Pad: " + b"a" * (LIMIT - 1024) + b"\r\n\r\n")
        status, _, _ = read_response(sock.recv, bytearray())
    assert status == 200
    # the same head dribbled in small pieces, on one connection, twice
    with connect(server) as sock:
        buffer = bytearray()
        for _ in range(2):
            request = HEAD + b"X-Pad: " + b"a" * (LIMIT - 1024) + b"\r\n\r\n"
            for i in range(0, len(request), 4096):
                sock.sendall(request[i : i + 4096])
            assert read_response(sock.recv, buffer)[0] == 200


def test_a_head_that_arrives_too_slowly_is_closed(start_limited) -> None:
    server = start_limited(header_timeout=1.0, idle_timeout=60.0)
    with connect(server) as sock:
        sock.settimeout(0.2)
        start = time.monotonic()
        sock.sendall(HEAD)
        closed = False
        while time.monotonic() - start < 10:  # a slowloris: one header line every 0.2 s, never the end
            try:
                sock.sendall(b"X-Slow: 1\r\n")
                if sock.recv(1) == b"":
                    closed = True
                    break
            except socket.timeout:
                continue
            except OSError:
                closed = True
                break
        elapsed = time.monotonic() - start
    assert closed and elapsed < 5, f"closed={closed} after {elapsed:.1f} s"
    assert server.get("/healthz").status_code == 200


@pytest.mark.parametrize("opening", [b"", b"\r\n"], ids=["silent", "blank-line"])
def test_a_connection_that_starts_no_request_is_closed(start_limited, opening: bytes) -> None:
    server = start_limited(header_timeout=30.0, idle_timeout=1.0)
    with connect(server) as sock:
        sock.sendall(opening)
        start = time.monotonic()
        _, closed = read_until_closed(sock, 10)
    assert closed and time.monotonic() - start < 6


def test_keep_alive_and_pipelining_still_work(start_limited) -> None:
    server = start_limited(header_timeout=2.0, idle_timeout=5.0)
    body = b'{"data": [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]]}'
    post = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    with connect(server) as sock:
        buffer = bytearray()
        sock.sendall(HEAD + b"\r\n" + post + HEAD + b"\r\n")  # three pipelined requests in one write
        answers = [read_response(sock.recv, buffer) for _ in range(3)]
        assert [a[0] for a in answers] == [200, 200, 200]
        assert json.loads(answers[1][2]) == {"rows": 2}
        # a head split across writes, then a request split in the middle of its second head
        for piece in (post[:20], post[20:60], post[60:] + post[:30]):
            sock.sendall(piece)
        sock.sendall(post[30:])
        assert [read_response(sock.recv, buffer)[0] for _ in range(2)] == [200, 200]
        assert "connection" not in answers[0][1]
        # kept alive for the next request, well within the idle timeout
        sock.sendall(HEAD + b"\r\n")
        assert read_response(sock.recv, buffer)[0] == 200


def test_at_the_cap_the_oldest_unfinished_head_makes_room(start_limited: Callable[..., Server]) -> None:
    server = start_limited(max_connections=3)
    held = [connect(server) for _ in range(3)]
    try:
        for sock in held:  # unfinished heads, as a flood holds them
            sock.sendall(HEAD)
        assert server.get("/healthz").status_code == 200, "a probe on a new connection gets in"
        closed = [read_until_closed(sock, 0.5)[1] for sock in held]
        assert closed.count(True) >= 1, "an unfinished head was closed to make room"
    finally:
        for sock in held:
            sock.close()
    assert "at the cap of open connections" in server.log()


def test_at_the_cap_with_every_connection_busy_a_new_one_is_closed_at_once(
    start_limited: Callable[..., Server],
) -> None:
    server = start_limited(max_connections=3)
    uploading = [connect(server) for _ in range(3)]
    try:
        for sock in uploading:  # requests being answered (their bodies still arriving) are never closed for room
            sock.sendall(
                b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            )
        server.wait_until(lambda: _refused(server), "a connection over the cap to be closed", deadline=10)
    finally:
        for sock in uploading:
            sock.close()
    server.wait_until(
        lambda: server.get("/healthz").status_code == 200, "service once connections are free", deadline=10
    )
    assert "new connections are closed at once" in server.log()


def _refused(server: Server) -> bool:
    extra = [connect(server) for _ in range(2)]
    try:
        answers = []
        for sock in extra:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            got, closed = read_until_closed(sock, 2)
            answers.append((got, closed))
        return any(closed and not got for got, closed in answers)
    finally:
        for sock in extra:
            sock.close()


def test_trailers_count_against_the_head_limit(start_limited: Callable[..., Server]) -> None:
    server = start_limited()
    sock = connect(server)
    before = rss_kib(server)
    sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n")
    sent = 0
    line = b"X-Trailer: " + b"a" * 1000 + b"\r\n"
    try:
        while sent < 8 * 1024 * 1024:
            sock.sendall(line * 64)
            sent += len(line) * 64
    except OSError:
        pass  # closed by the server: what this test wants
    _, closed = read_until_closed(sock, 10)
    sock.close()
    assert closed, "a connection sending endless trailers is closed"
    assert sent < 8 * 1024 * 1024 and rss_kib(server) - before < 16 * 1024


def test_deep_pipelining_without_reading_answers_closes_the_connection(start_limited: Callable[..., Server]) -> None:
    server = start_limited()
    sock = connect(server)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 500)
    except OSError:
        pass
    got, closed = read_until_closed(sock, 10)
    sock.close()
    assert closed and got.count(b"HTTP/1.1 200") < 500
    assert server.get("/healthz").status_code == 200


def test_at_the_cap_an_idle_connection_makes_room_for_a_new_one(start_limited: Callable[..., Server]) -> None:
    server = start_limited(max_connections=3)
    idle = [connect(server) for _ in range(3)]
    try:
        for sock in idle:  # one finished request each: idle keep-alive connections, as a flood would hold
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        assert server.get("/healthz").status_code == 200, "a probe still gets in"
    finally:
        for sock in idle:
            sock.close()


def test_blank_lines_do_not_keep_an_idle_connection_open(start_limited: Callable[..., Server]) -> None:
    server = start_limited(idle_timeout=1.5)
    sock = connect(server)
    started = time.monotonic()
    try:
        while time.monotonic() - started < 6:
            sock.sendall(b"\r\n")
            time.sleep(0.3)  # the trickle under test, not a wait for the server
    except OSError:
        pass
    _, closed = read_until_closed(sock, 2)
    sock.close()
    assert closed and time.monotonic() - started < 6, "closed at the idle deadline, not kept open by blank lines"


def test_more_pipelined_requests_than_the_bound_answer_those_parsed_then_close(
    start_limited: Callable[..., Server],
) -> None:
    server = start_limited()
    body = b'{"data": [[5.1, 3.5, 1.4, 0.2]]}'
    post = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    with connect(server) as sock:
        sock.sendall(post * 100)  # one write: all parsed at once, far beyond the bound
        got, closed = read_until_closed(sock, 20)
    answered = MAX_PIPELINED + 1  # the one being answered and those queued behind it
    assert closed and got.count(b"HTTP/1.1 200 OK") == answered, got[-300:]
    assert got.count(b'{"rows":1}') == answered
    assert got.rstrip().endswith(b'{"rows":1}') and got.lower().count(b"connection: close") == 1
    assert server.metric('gitops_ml_requests_total{route="score",status="200"}') == answered
    server.wait_until(
        lambda: server.log().count('"path":"/score"') == answered, "each answer in the access log", deadline=10
    )
    log = server.log()
    assert "Exception in ASGI application" not in log and "RuntimeError" not in log


def test_the_connection_cap_fits_the_file_descriptor_limit(start_limited: Callable[..., Server]) -> None:
    server = start_limited(fd_limit=256)
    idle = []
    try:
        for _ in range(400):  # more idle connections than the process may open files
            idle.append(connect(server))
        for _ in range(5):
            assert server.get("/healthz").status_code == 200, "a probe still gets in"
    finally:
        for sock in idle:
            sock.close()
    log = server.log()
    assert '"max_connections":192' in log and '"fd_limit":256' in log
    assert "at the cap of open connections" in log

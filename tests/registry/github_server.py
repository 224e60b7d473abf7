"""A local HTTP server on 127.0.0.1 that plays GitHub's REST API from a script of expected requests.

Each expected request names its method, path, query and JSON body (checked exactly) and the answer
GitHub would give. Headers (token, Accept, API version) are checked on every request. Anything
unexpected answers 599 and is recorded, so the test fails with what went wrong.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest

TOKEN = "ghs_test_token_123"
REPO = "acme/models"


@dataclass
class Expect:
    method: str
    path: str
    status: int
    answer: Any = None
    body: Any = None  # expected JSON body; None: no body
    query: dict[str, str] | None = None
    body_check: Any = None  # callable(body) -> None, for bodies too long to spell out


@dataclass
class GitHubServer:
    url: str
    script: list[Expect] = field(default_factory=list)
    seen: list[tuple[str, str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def expect(self, method: str, path: str, status: int, answer: Any = None, **kw: Any) -> None:
        self.script.append(Expect(method, path, status, answer, **kw))

    def assert_done(self) -> None:
        assert not self.problems, "\n".join(self.problems)
        assert not self.script, f"requests never made: {[(e.method, e.path) for e in self.script]}"


def _handler(server: GitHubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            server.seen.append((self.command, parts.path, body))
            problems = []
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                problems.append(f"Authorization header was {self.headers.get('Authorization')!r}")
            if self.headers.get("Accept") != "application/vnd.github+json":
                problems.append(f"Accept header was {self.headers.get('Accept')!r}")
            if self.headers.get("X-GitHub-Api-Version") != "2022-11-28":
                problems.append("X-GitHub-Api-Version header missing")
            if not server.script:
                problems.append(f"unexpected request {self.command} {self.path}")
                expect = None
            else:
                expect = server.script.pop(0)
                if (self.command, parts.path) != (expect.method, expect.path):
                    problems.append(f"expected {expect.method} {expect.path}, got {self.command} {parts.path}")
                if expect.query is not None and dict(parse_qsl(parts.query)) != expect.query:
                    problems.append(
                        f"{self.command} {parts.path}: query {dict(parse_qsl(parts.query))} != {expect.query}"
                    )
                if expect.body_check is not None:
                    try:
                        expect.body_check(body)
                    except AssertionError as exc:
                        problems.append(f"{self.command} {parts.path}: body check failed: {exc}")
                elif body != expect.body:
                    problems.append(f"{self.command} {parts.path}: body {body!r} != {expect.body!r}")
            if problems:
                server.problems.extend(problems)
                self._answer(599, {"message": "; ".join(problems)})
                return
            assert expect is not None
            self._answer(expect.status, expect.answer)

        def _answer(self, status: int, answer: Any) -> None:
            payload = json.dumps(answer).encode() if answer is not None else b""
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = _handle  # noqa: N815

    return Handler


@pytest.fixture
def github() -> Iterator[GitHubServer]:
    state = GitHubServer(url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def pull(number: int, head: str, base: str = "main") -> dict[str, Any]:
    """A pull request object as GitHub returns it (the fields gitops-ml reads, and a few more)."""
    return {
        "number": number,
        "html_url": f"https://github.com/{REPO}/pull/{number}",
        "state": "open",
        "head": {"ref": head, "label": f"acme:{head}"},
        "base": {"ref": base},
    }


def user(login: str, kind: str = "User") -> dict[str, Any]:
    """A user object as GitHub embeds it in a comment and answers for GET /user; kind is User or Bot."""
    return {"login": login, "id": abs(hash(login)) % 10**8, "type": kind}


def comment(number: int, body: str, author: dict[str, Any]) -> dict[str, Any]:
    """An issue comment as GitHub lists it."""
    return {
        "id": number,
        "body": body,
        "user": author,
        "html_url": f"https://github.com/{REPO}/pull/1#issuecomment-{number}",
    }


# what GET /user answers to a GitHub Actions installation token
INTEGRATION_403 = {
    "message": "Resource not accessible by integration",
    "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user",
    "status": "403",
}

"""Python client of a scoring endpoint: `score(url, data, key=...)` for notebooks and `gitops-ml call`.

Talks HTTP through httpx; maps transport failures and error answers to ScoringError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from gitops_ml.errors import ExternalToolError, UsageError
from gitops_ml.serving.settings import SCORE_PATH


class ScoringError(ExternalToolError):
    """Raised when an endpoint cannot be reached or answers with an error status."""

    def __init__(self, message: str, *, status: int = 0, body: Any = None, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.body = body
        if status >= 400:
            self.exit_code = 1  # the endpoint answered and refused (as `predict` exits); 5 stays for no usable answer


@dataclass(frozen=True)
class ScoreResult:
    """An endpoint's answer: the decoded JSON and the headers that identify it."""

    status: int
    data: Any
    request_id: str
    model_version: str


def _without_credentials(url: str) -> str:
    """`url` with any user:password@ taken out, for messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[1], parts.path, parts.query, parts.fragment))


def score_url(url: str) -> str:
    """`http://host:port` (no path) means the endpoint's scoring route; any other path is kept."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parses the port: a bad one raises here, not inside httpx
    except ValueError as exc:
        raise UsageError(f"not a valid URL: {url!r} ({exc})", hint="e.g. http://127.0.0.1:8080") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"not an http(s) URL: {url!r}", hint="e.g. http://127.0.0.1:8080")
    path = parts.path if parts.path not in ("", "/") else SCORE_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def score(url: str, data: Any, *, key: str | None = None, timeout: float = 30.0, raw: bytes | None = None) -> ScoreResult:
    """POST `data` (a JSON-serialisable object of named inputs, or `raw` JSON bytes) and decode the answer."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if key:
        if not key.isascii() or not key.isprintable() or key != key.strip():
            raise UsageError("the API key holds characters an HTTP header cannot carry (non-ASCII, control characters or surrounding spaces)",
                             hint="keys are printable ASCII; check --key or $GITOPS_ML_API_KEY")
        headers["Authorization"] = f"Bearer {key}"
    body = raw if raw is not None else orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)
    target = score_url(url)
    shown = _without_credentials(target)
    try:
        response = httpx.post(target, content=body, headers=headers, timeout=timeout)
    except httpx.TimeoutException as exc:
        what = "no connection" if isinstance(exc, httpx.ConnectTimeout) else "no answer"
        raise ScoringError(f"{what} from {shown} within {timeout:g} s", hint="a slow model needs a longer --timeout; a hung one, its server's log") from exc
    except httpx.HTTPError as exc:
        reason = str(exc).replace(target, shown) if key is None or key not in str(exc) else type(exc).__name__
        raise ScoringError(f"cannot reach {shown}: {reason}", hint="is the server running and the URL right?") from exc
    json_answer = True
    try:
        answer = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        answer, json_answer = response.text, False
    target = shown
    if response.status_code >= 400:
        message = (answer.get("message", "") if isinstance(answer, dict) else str(answer or "")[:500]) or response.reason_phrase or "no message"
        field = answer.get("field") if isinstance(answer, dict) else None
        detail = f" (field {field})" if field else ""
        hint = "pass --key or set GITOPS_ML_API_KEY" if response.status_code == 401 else ""
        raise ScoringError(f"{target} answered {response.status_code}: {message}{detail}", status=response.status_code, body=answer, hint=hint)
    if not json_answer or not response.content:
        kind = response.headers.get("content-type", "no content type") + ("" if response.content else ", empty")
        raise ScoringError(f"{target} answered {response.status_code} with {kind}, not JSON: {str(answer or '')[:200]!r}",
                           status=response.status_code, body=answer, hint="is this URL a gitops-ml scoring endpoint?")
    return ScoreResult(
        status=response.status_code,
        data=answer,
        request_id=response.headers.get("x-request-id", ""),
        model_version=response.headers.get("x-model-version", ""),
    )


class EndpointUnreachable(ExternalToolError):
    """Raised when an endpoint gives no HTTP answer at all (refused, reset, timed out)."""


def post_bytes(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> tuple[int, str]:
    """POST raw bytes as they are; (status, text) of whatever the endpoint answers."""
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise EndpointUnreachable(str(exc)) from exc
    return response.status_code, response.text


def probe(url: str, *, timeout: float) -> tuple[int, Any] | None:
    """GET a health route: (status, its JSON or None); None when nothing answered."""
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError:
        return None
    data = None
    if response.headers.get("content-type", "").startswith("application/json"):
        try:
            data = response.json()
        except ValueError:
            data = None
    return response.status_code, data

"""Client of the Prometheus HTTP API (`GET /api/v1/query`), through httpx: instant queries only.

Maps what can go wrong to our errors: no answer or no connection is PrometheusUnreachable, an answer
that is not Prometheus's (or a refused query) is ExternalToolError naming the query.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from gitops_ml.errors import ExternalToolError, UsageError


class PrometheusUnreachable(ExternalToolError):
    """Raised when no Prometheus answers at the address (connection refused, timeout, DNS)."""


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector (or the value of a scalar, with no labels)."""

    labels: dict[str, str]
    value: float


def check_url(url: str) -> str:
    """The address without a trailing '/', or UsageError when it is not an http(s) URL."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port raises here, not inside httpx
    except ValueError as exc:
        raise UsageError(f"not a valid Prometheus URL: {url!r} ({exc})", hint="e.g. http://prometheus.monitoring:9090") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"not an http(s) Prometheus URL: {url!r}", hint="e.g. http://prometheus.monitoring:9090")
    return url.rstrip("/")


class Prometheus:
    """Instant queries against one Prometheus server."""

    def __init__(self, url: str, *, timeout: float = 10.0, client: httpx.Client | None = None) -> None:
        self.url = check_url(url)
        self.timeout = timeout
        self.client = client or httpx.Client(timeout=timeout)

    def query(self, promql: str) -> list[Sample]:
        """The instant vector (or scalar) a query gives now; [] when it has no sample."""
        try:
            response = self.client.get(f"{self.url}/api/v1/query", params={"query": promql})
        except httpx.TimeoutException as exc:
            raise PrometheusUnreachable(f"Prometheus at {self.url} did not answer within {self.timeout:g} s ({type(exc).__name__})",
                                        hint="check the address and that this machine can reach it") from None
        except httpx.TransportError as exc:
            raise PrometheusUnreachable(f"Prometheus at {self.url} is unreachable: {exc}", hint="check the address and that this machine can reach it") from None
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
            raise ExternalToolError(f"{self.url} did not answer like Prometheus (HTTP {response.status_code})",
                                    hint="the address must be the Prometheus server itself, e.g. http://prometheus:9090")
        if body["status"] == "error":
            raise ExternalToolError(f"Prometheus refused a query ({body.get('errorType', 'error')}: {body.get('error', '')}): {promql}")
        data = body.get("data") or {}
        kind, result = data.get("resultType"), data.get("result") or []
        try:
            if kind == "scalar":
                return [Sample({}, float(result[1]))]
            if kind == "vector":
                return [Sample(dict(item.get("metric") or {}), float(item["value"][1])) for item in result]
        except (TypeError, ValueError, KeyError, IndexError):
            pass
        raise ExternalToolError(f"Prometheus answered a query with an unexpected result ({kind}): {promql}")

    def value(self, promql: str) -> float | None:
        """The first sample's value; None when the query has no sample or only NaN (no data yet)."""
        samples = self.query(promql)
        if not samples or math.isnan(samples[0].value):
            return None
        return samples[0].value

    def close(self) -> None:
        self.client.close()

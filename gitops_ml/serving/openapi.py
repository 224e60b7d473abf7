"""The OpenAPI 3.1 document of one endpoint, built from the model's request schema with its sample
as the example. Pure: dicts in, dict out; served as /swagger.json.
"""

from __future__ import annotations

from typing import Any, Mapping

from gitops_ml.serving.settings import DOCS_PATH, LIVENESS_PATH, METRICS_PATH, READINESS_PATH, SCORE_PATH

VERSIONED_SCORE_PATH = "/v1" + SCORE_PATH

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message", "request_id"],
    "properties": {
        "error": {"type": "string", "description": "Machine-readable code: invalid_json, invalid_input, unauthorized, ..."},
        "message": {"type": "string", "description": "What went wrong, for a person."},
        "request_id": {"type": "string", "description": "Also in the X-Request-Id header and the server's log."},
        "field": {"type": "string", "description": "The input (JSON path) that did not fit, for invalid_input."},
        "expected": {"type": "string", "description": "What would have fitted, for invalid_input."},
    },
}

_ERRORS = {
    "400": "The body is not JSON, or is empty.",
    "401": "No key, or a wrong key.",
    "408": "The body did not arrive within the body timeout (30 s by default) after its headers.",
    "413": "The body, or a binary input, is over the size limit.",
    "415": "The content type is not application/json.",
    "422": "The JSON does not fit the input schema (a null in a typed table column and an empty binary input included); `field` names the input.",
    "429": "The queue is full (when configured to answer 429); retry after Retry-After seconds.",
    "500": "run() failed; the log has details under the request id.",
    "503": "Not ready, the queue is full, or the request waited too long in the queue; retry after Retry-After seconds.",
    "504": "run() did not answer within the request timeout.",
}


def build_openapi(
    *,
    model: str,
    version: str,
    request_schema: Mapping[str, Any] | None,
    sample: Any,
    auth: bool,
    output_schema: Mapping[str, Any] | None = None,
    prefix: str = "",
) -> dict[str, Any]:
    """The document; `prefix` is the endpoint's public path prefix (the `servers` URL), '' for none."""
    body_schema = {k: v for k, v in (request_schema or {"type": "object"}).items() if k != "$schema"}
    body_schema = _with_server_rules(body_schema)
    media: dict[str, Any] = {"schema": body_schema}
    if sample is not None:
        media["example"] = sample
    headers = {"X-Request-Id": {"description": "Request id (echoed when the caller sent one).", "schema": {"type": "string"}}}
    responses: dict[str, Any] = {
        "200": {
            "description": "The value run() returned, as JSON.",
            "headers": headers,
            "content": {"application/json": {"schema": dict(output_schema or {})}},
        }
    }
    for status, text in _ERRORS.items():
        if status == "401" and not auth:
            continue
        status_headers = dict(headers)
        if status in ("429", "503"):
            status_headers["Retry-After"] = {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}
        responses[status] = {"description": text, "headers": status_headers, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    operation: dict[str, Any] = {
        "summary": f"Score with {model} {version}",
        "operationId": "score",
        "requestBody": {"required": True, "content": {"application/json": media}},
        "responses": responses,
    }
    if auth:
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
    plain = {"200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}}
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": f"{model} scoring endpoint", "version": version, "description": f"Scores requests with model {model} version {version}."},
        "paths": {
            SCORE_PATH: {"post": operation},
            VERSIONED_SCORE_PATH: {"post": {**operation, "operationId": "score_v1", "summary": operation["summary"] + " (versioned alias)"}},
            LIVENESS_PATH: {"get": {"summary": "Liveness", "operationId": "healthz", "responses": plain}},
            READINESS_PATH: {
                "get": {
                    "summary": "Readiness: 200 once init() returned, 503 while starting, draining or after a failed init()",
                    "operationId": "readyz",
                    "responses": {**plain, "503": {"description": "Not ready", "content": {"application/json": {"schema": {"type": "object"}}}}},
                }
            },
            DOCS_PATH: {
                "get": {
                    "summary": "This page: inputs, a form that scores the sample, the curl command",
                    "operationId": "docs",
                    "responses": {"200": {"description": "HTML, self-contained (no CDN)", "content": {"text/html": {"schema": {"type": "string"}}}}},
                }
            },
            METRICS_PATH: {
                "get": {
                    "summary": "Prometheus metrics",
                    "operationId": "metrics",
                    "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}},
                }
            },
        },
        "components": {"schemas": {"Error": ERROR_SCHEMA}},
    }
    if prefix:
        # relative to where the document is served from: the paths below are under the prefix
        document["servers"] = [{"url": prefix, "description": "The endpoint's path prefix"}]
    if auth:
        document["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer <primary or secondary key>"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
        }
    return document


def _with_server_rules(schema: dict[str, Any]) -> dict[str, Any]:
    """The request schema with what the server also enforces written in: a binary input holds at least
    one byte (so at least 4 base64 characters)."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return schema
    changed = {}
    for name, sub in properties.items():
        hint = sub.get("x-gitops-ml") if isinstance(sub, Mapping) else None
        if isinstance(hint, Mapping) and hint.get("kind") == "binary" and "minLength" not in sub:
            changed[name] = {**sub, "minLength": 4}
    return {**schema, "properties": {**properties, **changed}} if changed else schema

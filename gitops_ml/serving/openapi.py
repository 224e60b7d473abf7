"""The OpenAPI 3.1 document of one endpoint, built from the model's request schema with its sample
as the example. Pure: dicts in, dict out; served as /swagger.json.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class ProtocolDocs:
    """What the document says of the inference protocols: the model's input tensors and the sample as
    an Open Inference Protocol request and as a KServe V1 request (None when the sample cannot be one)."""

    tensors: list[dict[str, Any]]
    v2_example: dict[str, Any] | None
    v1_example: dict[str, Any] | None


PROTOCOL_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What went wrong, for a person (what Triton's and KServe's clients show)."},
        "code": {"type": "string", "description": "Machine-readable code, as /score's `error`."},
        "request_id": {"type": "string"},
        "field": {"type": "string", "description": "The tensor or input that did not fit."},
        "expected": {"type": "string"},
    },
}
_TENSOR: dict[str, Any] = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string", "enum": ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"]},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "parameters": {"type": "object"},
        "data": {"type": "array", "description": "Row-major elements (flat or nested); BYTES elements are strings."},
    },
}
# a tensor as metadata describes it: -1 stands for a dimension of any size
_TENSOR_METADATA: dict[str, Any] = {
    **_TENSOR,
    "properties": {**_TENSOR["properties"], "shape": {"type": "array", "items": {"type": "integer", "minimum": -1}}},
}
_PROTOCOL_ERRORS = {
    "400": "The request does not follow the protocol or the model's tensors (datatype, shape, name, a missing input, bytes that are not the declared type).",
    "401": "No key, or a wrong key.",
    "404": "The path names another model or version than this endpoint's.",
    "413": "The body, or a binary input, is over the size limit.",
    "503": "Not ready, or the queue is full; retry after Retry-After seconds.",
    "504": "run() did not answer within the request timeout.",
}


def protocol_paths(model: str, version: str, docs: ProtocolDocs, *, auth: bool) -> dict[str, Any]:
    """The Open Inference Protocol and KServe V1 routes of one endpoint (the model name is the endpoint's)."""
    major = version.split(".", 1)[0]
    version_param = {"name": "version", "in": "path", "required": True, "schema": {"type": "string", "enum": sorted({version, major})},
                     "description": f"The version served ({version}) or its MAJOR number ({major}), which a compatible rollout keeps."}

    def errors(*statuses: str) -> dict[str, Any]:
        shown = {}
        for status in statuses:
            if status == "401" and not auth:
                continue
            shown[status] = {"description": _PROTOCOL_ERRORS[status], "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProtocolError"}}}}
        return shown

    def read(summary: str, operation_id: str, schema: dict[str, Any], *, versioned: bool = False, not_ready: bool = False) -> dict[str, Any]:
        responses: dict[str, Any] = {"200": {"description": "OK", "content": {"application/json": {"schema": schema}}}}
        if not_ready:
            responses["503"] = {"description": "Not ready", "content": {"application/json": {"schema": schema}}}
        if operation_id not in ("v2_server", "v2_live", "v2_ready"):
            responses.update(errors("404"))  # another model's or version's name in the path
        operation: dict[str, Any] = {"summary": summary, "operationId": operation_id, "responses": responses}
        if versioned:
            operation["parameters"] = [version_param]
        return {"get": operation}

    ready_schema = {"type": "object", "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}}}
    metadata_schema = {
        "type": "object",
        "required": ["name", "versions", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"}, "versions": {"type": "array", "items": {"type": "string"}}, "platform": {"type": "string"},
            "inputs": {"type": "array", "items": _TENSOR_METADATA}, "outputs": {"type": "array", "items": _TENSOR_METADATA}, "parameters": {"type": "object"},
        },
        "example": {"name": model, "versions": sorted({major, version}), "inputs": docs.tensors},
    }
    request_media: dict[str, Any] = {
        "schema": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": {"type": "object"},
                "inputs": {"type": "array", "minItems": 1, "items": _TENSOR},
                "outputs": {"type": "array", "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "parameters": {"type": "object"}}}},
            },
        }
    }
    if docs.v2_example is not None:
        request_media["example"] = docs.v2_example
    response_schema = {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {"model_name": {"type": "string"}, "model_version": {"type": "string"}, "id": {"type": "string"}, "outputs": {"type": "array", "items": _TENSOR}},
    }

    def infer(summary: str, operation_id: str, *, versioned: bool = False) -> dict[str, Any]:
        operation: dict[str, Any] = {
            "summary": summary,
            "operationId": operation_id,
            "description": "Tensors in, tensors out (Open Inference Protocol). Binary tensor data: send the JSON header's length as "
                           "Inference-Header-Content-Length, the tensors' bytes after it, and `parameters.binary_data_size` on each.",
            "requestBody": {"required": True, "content": {"application/json": request_media, "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": {
                "200": {"description": "Output tensors; binary data after the JSON header when asked (binary_data_output).",
                        "content": {"application/json": {"schema": response_schema}, "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                **errors("400", "401", "404", "413", "503", "504"),
            },
        }
        if versioned:
            operation["parameters"] = [version_param]
        if auth:
            operation["security"] = [{"bearer": []}, {"apiKey": []}]
        return {"post": operation}

    v1_media: dict[str, Any] = {
        "schema": {
            "type": "object",
            "properties": {"instances": {"type": "array", "minItems": 1}, "inputs": {}},
            "oneOf": [{"required": ["instances"]}, {"required": ["inputs"]}],
        }
    }
    if docs.v1_example is not None:
        v1_media["example"] = docs.v1_example
    predict: dict[str, Any] = {
        "summary": f"Score with {model} (KServe V1): instances in, predictions out",
        "operationId": "v1_predict",
        "requestBody": {"required": True, "content": {"application/json": v1_media}},
        "responses": {
            "200": {"description": "The predictions", "content": {"application/json": {"schema": {"type": "object", "required": ["predictions"], "properties": {"predictions": {"type": "array"}}}}}},
            **errors("400", "401", "404", "413", "503", "504"),
        },
    }
    if auth:
        predict["security"] = [{"bearer": []}, {"apiKey": []}]
    server_schema = {"type": "object", "properties": {"name": {"type": "string"}, "version": {"type": "string"}, "extensions": {"type": "array", "items": {"type": "string"}}}}
    base = f"/v2/models/{model}"
    return {
        "/v2": read("Server metadata (Open Inference Protocol)", "v2_server", server_schema),
        "/v2/health/live": read("Server liveness (Open Inference Protocol)", "v2_live", {"type": "object", "properties": {"live": {"type": "boolean"}}}),
        "/v2/health/ready": read("Server readiness (Open Inference Protocol)", "v2_ready", {"type": "object", "properties": {"ready": {"type": "boolean"}}}, not_ready=True),
        base: read(f"Model metadata: input tensors from schema.json ({model})", "v2_metadata", metadata_schema),
        f"{base}/versions/{{version}}": read("Model metadata of a version", "v2_metadata_version", metadata_schema, versioned=True),
        f"{base}/ready": read("Model readiness", "v2_model_ready", ready_schema, not_ready=True),
        f"{base}/versions/{{version}}/ready": read("Model readiness of a version", "v2_model_ready_version", ready_schema, versioned=True, not_ready=True),
        f"{base}/config": read("Model configuration as Triton states it (perf_analyzer reads it)", "v2_config", {"type": "object"}),
        f"{base}/infer": infer(f"Score with {model} (Open Inference Protocol)", "v2_infer"),
        f"{base}/versions/{{version}}/infer": infer(f"Score with {model} at a version (Open Inference Protocol)", "v2_infer_version", versioned=True),
        f"/v1/models/{model}": read("Model readiness (KServe V1)", "v1_ready", ready_schema, not_ready=True),
        f"/v1/models/{model}:predict": {"post": predict},
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
    protocols: ProtocolDocs | None = None,
) -> dict[str, Any]:
    """The document; `prefix` is the endpoint's public path prefix (the `servers` URL), '' for none;
    `protocols` adds the inference protocols' routes."""
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
    if protocols is not None:
        document["paths"].update(protocol_paths(model, version, protocols, auth=auth))
        document["components"]["schemas"]["ProtocolError"] = PROTOCOL_ERROR_SCHEMA
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

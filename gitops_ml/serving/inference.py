"""Infer a request schema (JSON Schema 2020-12 with `x-gitops-ml` annotations) from a sample.

The sample is a JSON object of named inputs, as parsed JSON or as Python objects (NumPy arrays,
pandas DataFrames, bytes) from a notebook. Pure: no file access, no server state.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Mapping

import numpy as np
import pandas as pd

from gitops_ml.errors import LoadError

ANNOTATION = "x-gitops-ml"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_MAX_BINARY_BYTES = 1024 * 1024

# Binary inputs are recognised by their magic bytes only: a long base64-looking string (a hex
# digest, a token) is far more often plain text than an image.
MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"%PDF-", "application/pdf"),
    (b"\x1f\x8b", "application/gzip"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x93NUMPY", "application/x-npy"),
)
_RIFF_KINDS = {b"WEBP": "image/webp", b"WAVE": "audio/wav"}
_BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")


def sniff_media_type(data: bytes) -> str | None:
    """Media type of `data` by its magic bytes, or None when unknown."""
    if data[:4] == b"RIFF" and data[8:12] in _RIFF_KINDS:
        return _RIFF_KINDS[data[8:12]]
    for magic, media_type in MAGIC:
        if data.startswith(magic):
            return media_type
    return None


def infer_schema(sample: Mapping[str, Any], *, max_binary_bytes: int = DEFAULT_MAX_BINARY_BYTES) -> dict[str, Any]:
    """The request schema for a sample: one annotated property per named input, all required.

    Raises LoadError when the sample is not an object of named inputs.
    """
    if not isinstance(sample, Mapping) or not sample:
        raise LoadError(
            "the sample must be a JSON object of named inputs, e.g. {\"data\": [[1, 2, 3, 4]]}",
            hint="wrap a bare array or value in an object: {\"data\": ...}",
        )
    properties = {}
    for name, value in sample.items():
        if not isinstance(name, str) or not name:
            raise LoadError(f"input names must be non-empty strings, got {name!r}")
        properties[name] = infer_input(value, max_binary_bytes=max_binary_bytes)
    return {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


def infer_input(value: Any, *, max_binary_bytes: int = DEFAULT_MAX_BINARY_BYTES) -> dict[str, Any]:
    """The annotated schema of one named input."""
    if isinstance(value, np.ndarray):
        return _ndarray_schema(value)
    if isinstance(value, pd.DataFrame):
        return _dataframe_schema(value, "records")
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return _binary_schema(sniff_media_type(data) or "application/octet-stream", max_binary_bytes)
    if isinstance(value, str):
        media_type = _base64_media_type(value)
        if media_type:
            return _binary_schema(media_type, max_binary_bytes)
    if isinstance(value, list) and value:
        array = _numeric_array(value)
        if array is not None:
            return _ndarray_schema(array)
        if all(isinstance(row, dict) and row for row in value) and _same_keys(value) and _scalar_rows(value):
            return _dataframe_schema(pd.DataFrame.from_records(value), "records")
    if isinstance(value, dict) and _is_split_frame(value):
        return _dataframe_schema(pd.DataFrame(value["data"], columns=value["columns"]), "split")
    schema = json_schema_of(value)
    schema[ANNOTATION] = {"kind": "json"}
    return schema


def json_schema_of(value: Any) -> dict[str, Any]:
    """A plain JSON Schema for a JSON value: types, object keys (all required), uniform item types."""
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, dict):
        return {
            "type": "object",
            "properties": {str(k): json_schema_of(v) for k, v in value.items()},
            "required": [str(k) for k in value],
        }
    if isinstance(value, (list, tuple)):
        schema: dict[str, Any] = {"type": "array"}
        item_schemas = [json_schema_of(v) for v in value]
        types = {s["type"] for s in item_schemas}
        if types == {"integer", "number"}:
            schema["items"] = {"type": "number"}
        elif len(types) == 1 and types != {"object"} and types != {"array"}:
            schema["items"] = item_schemas[0]
        elif item_schemas and all(s == item_schemas[0] for s in item_schemas):
            schema["items"] = item_schemas[0]
        return schema
    raise LoadError(f"cannot infer a schema for a value of type {type(value).__name__}")


def _numeric_array(value: list[Any]) -> np.ndarray | None:
    try:
        array = np.array(value)
    except (ValueError, TypeError):  # ragged rows
        return None
    if array.dtype.kind not in "biuf" or array.size == 0:
        return None
    return array


def _ndarray_schema(array: np.ndarray) -> dict[str, Any]:
    if array.ndim == 0:
        raise LoadError("a NumPy input needs at least one dimension (the batch dimension)")
    dtype = np.dtype(array.dtype)
    if dtype.kind not in "biuf":
        raise LoadError(f"NumPy inputs must be numeric or boolean, got dtype {dtype}")
    leaf = {"b": "boolean", "i": "integer", "u": "integer", "f": "number"}[dtype.kind]
    schema: dict[str, Any] = {"type": leaf}
    if dtype.kind == "u":
        schema["minimum"] = 0
    for size in reversed(array.shape[1:]):
        schema = {"type": "array", "minItems": size, "maxItems": size, "items": schema}
    schema = {"type": "array", "minItems": 1, "items": schema}
    schema[ANNOTATION] = {"kind": "ndarray", "dtype": dtype.name, "shape": [None, *array.shape[1:]]}
    return schema


def _dataframe_schema(frame: pd.DataFrame, orient: str) -> dict[str, Any]:
    columns = {str(c): _column_dtype(frame[c]) for c in frame.columns}
    cell = {name: _cell_schema(dtype) for name, dtype in columns.items()}
    if orient == "records":
        schema: dict[str, Any] = {
            "type": "array",
            "minItems": 1,
            "items": {"type": "object", "additionalProperties": False, "required": list(columns), "properties": cell},
        }
    else:
        width = len(columns)
        schema = {
            "type": "object",
            "additionalProperties": False,
            "required": ["columns", "data"],
            "properties": {
                "columns": {"type": "array", "const": list(columns)},
                "index": {"type": "array"},
                "data": {
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "array", "minItems": width, "maxItems": width, "prefixItems": list(cell.values())},
                },
            },
        }
    schema[ANNOTATION] = {"kind": "dataframe", "orient": orient, "columns": columns}
    return schema


def _column_dtype(column: pd.Series) -> str:
    dtype = column.dtype
    if dtype.kind in "biuf":
        return str(np.dtype(dtype).name)
    if dtype.kind == "M":
        return "datetime64[ns]"
    return "object"


def _cell_schema(dtype: str) -> dict[str, Any]:
    kind = np.dtype(dtype).kind if dtype != "object" else "O"
    if kind == "b":
        return {"type": "boolean"}
    if kind in "iu":
        return {"type": "integer"}
    if kind == "f":
        return {"type": "number"}
    if kind == "M":
        return {"type": "string", "format": "date-time"}
    return {"type": ["string", "number", "boolean", "null"]}


def _binary_schema(media_type: str, max_bytes: int) -> dict[str, Any]:
    return {
        "type": "string",
        "contentEncoding": "base64",
        "contentMediaType": media_type,
        "maxLength": 4 * -(-max_bytes // 3),
        ANNOTATION: {"kind": "binary", "media_type": media_type, "max_bytes": max_bytes},
    }


def _base64_media_type(text: str) -> str | None:
    if len(text) < 8 or len(text) % 4 or not _BASE64.match(text):
        return None
    try:
        head = base64.b64decode(text[:64], validate=True)
    except (binascii.Error, ValueError):
        return None
    return sniff_media_type(head)


def _same_keys(rows: list[dict[str, Any]]) -> bool:
    keys = list(rows[0])
    return all(list(row) == keys or set(row) == set(keys) for row in rows)


def _scalar_rows(rows: list[dict[str, Any]]) -> bool:
    return all(v is None or isinstance(v, (str, int, float, bool)) for row in rows for v in row.values())


def _is_split_frame(value: dict[str, Any]) -> bool:
    if not {"columns", "data"} <= set(value) <= {"columns", "data", "index"}:
        return False
    columns, data = value["columns"], value["data"]
    return (
        isinstance(columns, list)
        and bool(columns)
        and all(isinstance(c, str) for c in columns)
        and isinstance(data, list)
        and bool(data)
        and all(isinstance(row, list) and len(row) == len(columns) for row in data)
    )

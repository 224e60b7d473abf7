"""How the inference protocols map onto schema.json, without a server: the tensors the metadata lists,
requests (JSON and binary tensor data) turned into what run() receives, answers turned into tensors,
KServe V1 instances, and the paths that name this endpoint's model or another's."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from gitops_ml.serving.bodies import Decoded, Refusal
from gitops_ml.serving.decoding import RequestDecoder
from gitops_ml.serving.kserve_v1 import V1Layout, predictions
from gitops_ml.serving.oip import Layout, Request, output_tensors
from gitops_ml.serving.protocol_routes import Protocols, Route, parse_route
from tests.serving.conftest import EXAMPLES
from tests.serving.test_protocols import PANDAS_ROWS, PANDAS_SCHEMA

IRIS_SCHEMA = json.loads((EXAMPLES / "iris" / "schema.json").read_text())
DIGITS_SCHEMA = json.loads((EXAMPLES / "digits" / "schema.json").read_text())
DIGITS = json.loads((EXAMPLES / "digits" / "sample.json").read_text())


def layout(schema: dict[str, Any]) -> Layout:
    return Layout.from_schema(schema, RequestDecoder.from_schema(schema))


def decoded(schema: dict[str, Any], body: dict[str, Any], binary: bytes = b"") -> Any:
    head = orjson.dumps(body)
    result, _ = layout(schema).decode(head + binary, len(head) if binary else None, "r-1")
    assert isinstance(result, Decoded), result
    return result.data


def refused(schema: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    result, _ = layout(schema).decode(orjson.dumps(body), None, "r-1")
    # the schema's refusals keep /score's 422 (metrics, capture); the answer turns them into the protocols' 400
    assert isinstance(result, Refusal) and result.status in (400, 422), result
    error: dict[str, Any] = orjson.loads(result.body)
    return error


def test_metadata_lists_one_tensor_per_input_and_per_column() -> None:
    assert layout(IRIS_SCHEMA).inputs_metadata() == [{"name": "data", "datatype": "FP64", "shape": [-1, 4]}]
    digits = layout(DIGITS_SCHEMA).inputs_metadata()
    assert [(t["name"], t["datatype"], t["shape"]) for t in digits] == [
        ("image", "BYTES", [1]),
        ("options", "BYTES", [1]),
    ]
    assert digits[1]["parameters"] == {"content_type": "application/json"}
    columns = layout(PANDAS_SCHEMA).inputs_metadata()
    assert [(t["name"], t["datatype"]) for t in columns] == [
        ("length", "FP64"),
        ("count", "INT64"),
        ("colour", "BYTES"),
    ]


def test_a_tensor_in_json_or_binary_data_becomes_the_same_array() -> None:
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3]])
    as_json = decoded(
        IRIS_SCHEMA, {"inputs": [{"name": "data", "datatype": "FP64", "shape": [2, 4], "data": rows.ravel().tolist()}]}
    )
    nested = decoded(
        IRIS_SCHEMA, {"inputs": [{"name": "data", "datatype": "FP64", "shape": [2, 4], "data": rows.tolist()}]}
    )
    binary = decoded(
        IRIS_SCHEMA,
        {"inputs": [{"name": "data", "datatype": "FP32", "shape": [2, 4], "parameters": {"binary_data_size": 32}}]},
        rows.astype(np.float32).tobytes(),
    )
    for array in (as_json, nested, binary):
        assert isinstance(array, np.ndarray) and array.dtype == np.float64 and array.shape == (2, 4)
    assert np.array_equal(as_json, rows) and np.array_equal(nested, rows) and np.allclose(binary, rows)
    binary[0, 0] = 0.0  # run() gets an array of its own, not a read-only view of the body


def test_binary_bytes_and_json_text_reach_run_as_score_would_give_them() -> None:
    png = base64.b64decode(DIGITS["image"])
    element = struct.pack("<I", len(png)) + png
    inputs = decoded(
        DIGITS_SCHEMA,
        {
            "inputs": [
                {"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(element)}},
                {"name": "options", "datatype": "BYTES", "shape": [1], "data": ['{"top_k": 2}']},
            ]
        },
        element,
    )
    assert inputs == {"image": png, "options": {"top_k": 2}}
    as_json = decoded(
        DIGITS_SCHEMA,
        {
            "inputs": [
                {"name": "image", "datatype": "BYTES", "shape": [1], "data": [DIGITS["image"]]},
                {"name": "options", "datatype": "BYTES", "shape": [1], "data": ['{"top_k": 2}']},
            ]
        },
    )
    assert as_json["image"] == png


def test_column_tensors_become_the_table() -> None:
    frame = decoded(
        PANDAS_SCHEMA,
        {
            "parameters": {"content_type": "pd"},
            "inputs": [
                {"name": "length", "datatype": "FP64", "shape": [2], "data": [r["length"] for r in PANDAS_ROWS]},
                {"name": "count", "datatype": "INT64", "shape": [2, 1], "data": [[r["count"]] for r in PANDAS_ROWS]},
                {"name": "colour", "datatype": "BYTES", "shape": [2], "data": [r["colour"] for r in PANDAS_ROWS]},
            ],
        },
    )
    assert isinstance(frame, pd.DataFrame)
    assert frame.to_dict(orient="records") == PANDAS_ROWS and str(frame["count"].dtype) == "int64"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": [{"name": "data", "datatype": "INT64", "shape": [1, 4], "data": [1, 2, 3, 4]}]}, None),
        (
            {"inputs": [{"name": "data", "datatype": "FP64", "shape": [1, 4], "data": [1, True, 3, 4]}]},
            "data[0][1]: expected numbers, got a boolean",
        ),
        (
            {"inputs": [{"name": "data", "datatype": "FP64", "shape": [1, 4], "data": [1, "a", 3, 4]}]},
            "data[0][1]: expected numbers, got a string",
        ),
        (
            {"inputs": [{"name": "data", "datatype": "FP64", "shape": [2, 4], "data": [[1, 2, 3, 4], [1, 2]]}]},
            "not of shape [2, 4]",
        ),
        (
            {"inputs": [{"name": "data", "datatype": "FP64", "shape": [4], "data": [1, 2, 3, 4]}]},
            "expected shape (n, 4), got (4,)",
        ),
        (
            {"inputs": [{"name": "data", "datatype": "FP64", "shape": [-1, 4], "data": [1, 2, 3, 4]}]},
            "non-negative integers",
        ),
        ({"inputs": []}, "non-empty array of tensors"),
        (
            {"id": 7, "inputs": [{"name": "data", "datatype": "FP64", "shape": [1, 4], "data": [1, 2, 3, 4]}]},
            "'id' must be a string",
        ),
    ],
)
def test_iris_tensors_are_refused_naming_what_is_wrong(body: dict[str, Any], message: str | None) -> None:
    if message is None:  # integers for a float input, as /score takes them
        assert decoded(IRIS_SCHEMA, body).dtype == np.float64
    else:
        assert message in refused(IRIS_SCHEMA, body)["error"]


def test_answers_become_tensors_as_the_request_asks() -> None:
    tensors = output_tensors(
        {"predictions": [0, 1, 2], "scores": [[0.1, 0.9], [0.5, 0.5]], "label": "x", "top": [{"digit": 3}]}
    )
    assert [(t["name"], t["datatype"], t["shape"]) for t, _ in tensors] == [
        ("predictions", "INT64", [3]),
        ("scores", "FP64", [2, 2]),
        ("label", "BYTES", [1]),
        ("top", "BYTES", [1]),
    ]
    assert [(t["name"], t["datatype"]) for t, _ in output_tensors([0.5, 1])] == [("output-0", "FP64")]
    request = Request()
    request.read_outputs([{"name": "predictions", "parameters": {"binary_data": True}}], None)
    body, header = layout(IRIS_SCHEMA).answer(
        orjson.dumps({"predictions": [0, 1, 2], "other": [1]}), request, "iris", "1.2.3"
    )
    assert header is not None
    head = orjson.loads(body[:header])
    assert [o["name"] for o in head["outputs"]] == ["predictions"]
    assert np.frombuffer(body[header:], dtype=np.int64).tolist() == [0, 1, 2]


def test_kserve_v1_instances_map_onto_rows_records_and_named_inputs() -> None:
    iris = V1Layout(RequestDecoder.from_schema(IRIS_SCHEMA))
    result = iris.decode(orjson.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}), "r")
    assert isinstance(result, Decoded) and result.data.shape == (1, 4)
    tables = V1Layout(RequestDecoder.from_schema(PANDAS_SCHEMA))
    for instances in (PANDAS_ROWS, [[r["length"], r["count"], r["colour"]] for r in PANDAS_ROWS]):
        frame = tables.decode(orjson.dumps({"instances": instances}), "r")
        assert isinstance(frame, Decoded) and frame.data.to_dict(orient="records") == PANDAS_ROWS
    digits = V1Layout(RequestDecoder.from_schema(DIGITS_SCHEMA))
    named = digits.decode(orjson.dumps({"inputs": {"image": {"b64": DIGITS["image"]}, "options": {"top_k": 1}}}), "r")
    assert isinstance(named, Decoded) and named.data["image"].startswith(b"\x89PNG")
    two = digits.decode(orjson.dumps({"instances": [DIGITS, DIGITS]}), "r")
    assert isinstance(two, Refusal) and b"one instance per request, got 2" in two.body
    assert orjson.loads(predictions(b'{"predictions": [1]}')) == {"predictions": [1]}
    assert orjson.loads(predictions(b'{"digit": 3}')) == {"predictions": [{"digit": 3}]}


def test_paths_name_this_endpoints_model_and_its_version_or_major() -> None:
    assert parse_route("/v2/models/iris/versions/1/infer") == Route("infer", "iris", "1")
    assert parse_route("/v2/models/iris") == Route("metadata", "iris")
    assert parse_route("/v1/models/iris:predict") == Route("v1_predict", "iris")
    assert parse_route("/v2/models/iris/explain") is None and parse_route("/v2/models//infer") is None
    protocols = Protocols(
        model="iris",
        version="1.4.2",
        schema=IRIS_SCHEMA,
        decoder=RequestDecoder.from_schema(IRIS_SCHEMA),
        output_schema=None,
        platform="python",
    )
    assert protocols.serves(Route("infer", "iris", "1")) and protocols.serves(Route("infer", "iris", "1.4.2"))
    assert not protocols.serves(Route("infer", "iris", "2")) and not protocols.serves(Route("infer", "wine"))
    assert json.loads(protocols.metadata)["versions"] == ["1", "1.4.2"]

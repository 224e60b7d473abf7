"""JSON booleans are not numbers: an ndarray input of numbers refuses them wherever they sit, mixed
with numbers or not (NumPy would quietly turn true into 1), with or without the raw body at hand."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import orjson
import pytest

from gitops_ml.serving.decoding import InputError, RequestDecoder
from tests.serving.conftest import EXAMPLES


def ndarray_decoder(dtype: str, shape: list[int | None]) -> RequestDecoder:
    return RequestDecoder.from_schema(
        {
            "type": "object",
            "properties": {"x": {"type": "array", "x-gitops-ml": {"kind": "ndarray", "dtype": dtype, "shape": shape}}},
        }
    )


IRIS = RequestDecoder.from_schema(json.loads((EXAMPLES / "iris" / "schema.json").read_text()))


@pytest.mark.parametrize(
    ("rows", "where"),
    [
        ([[True, 1, 1, 1]], "data[0][0]"),
        ([[True, 1.5, 1, 1]], "data[0][0]"),
        ([[True, True, True, True]], "data[0][0]"),
        ([[5.1, 3.5, 1.4, 0.2], [1, 2, 3, False]], "data[1][3]"),
    ],
)
@pytest.mark.parametrize("with_raw", [True, False], ids=["raw", "no-raw"])
def test_booleans_in_a_float_array_are_refused(rows: list[list[Any]], where: str, with_raw: bool) -> None:
    body = {"data": rows}
    raw = orjson.dumps(body) if with_raw else None
    with pytest.raises(InputError) as refused:
        IRIS.decode(body, raw=raw)
    assert refused.value.status == 422
    assert refused.value.field == where
    assert refused.value.message == f"{where}: expected numbers, got a boolean"


@pytest.mark.parametrize("dtype", ["int64", "uint8", "float32"])
def test_integer_and_other_numeric_arrays_refuse_booleans_too(dtype: str) -> None:
    decoder = ndarray_decoder(dtype, [None, None, 2])
    body = {"x": [[[1, 2], [3, 4]], [[5, 6], [7, True]]]}
    with pytest.raises(InputError) as refused:
        decoder.decode(body, raw=orjson.dumps(body))
    assert refused.value.field == "x[1][1][1]"


def test_boolean_arrays_and_numbers_still_decode() -> None:
    flags = ndarray_decoder("bool", [None])
    assert flags.decode({"x": [True, False]}, raw=b'{"x": [true, false]}')["x"].tolist() == [True, False]
    body = {"data": [[5.1, 3.5, 1.4, 0.2], [6, 2, 4, 1]]}
    decoded = IRIS.decode(body, raw=orjson.dumps(body))["data"]
    assert decoded.dtype == np.float64 and decoded.tolist() == [[5.1, 3.5, 1.4, 0.2], [6.0, 2.0, 4.0, 1.0]]
    # a raw body that mentions true elsewhere (a string) costs a scan, not a refusal
    body = {"data": [[1, 2, 3, 4]], "note": "true"}
    assert IRIS.decode({"data": body["data"]}, raw=orjson.dumps(body))["data"].tolist() == [[1.0, 2.0, 3.0, 4.0]]


def test_the_server_answers_422_for_booleans_among_numbers(start_server) -> None:
    server = start_server(EXAMPLES / "iris")
    for rows in ([[True, 1, 1, 1]], [[True, 1.5, 1, 1]], [[True, True, True, True]]):
        answer = server.post({"data": rows})
        assert answer.status_code == 422, (rows, answer.text)
        assert answer.json()["field"] == "data[0][0]" and "boolean" in answer.json()["message"]
    assert server.post({"data": [[5.1, 3.5, 1.4, 0.2]]}).json() == {"predictions": [0]}

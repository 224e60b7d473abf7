"""Long arrays are converted a chunk of rows at a time (so the interpreter lock is held briefly and
NumPy's temporaries stay small): the result, and every refusal, is the same as for a short array."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gitops_ml.serving.decoding import CHUNK_ROWS, InputError, NdarrayCheck, RequestDecoder

ROWS = 3 * CHUNK_ROWS + 17


def rows(n: int = ROWS) -> list[list[Any]]:
    return [[i * 0.5, 1, 2.25, -i] for i in range(n)]


def test_a_long_array_decodes_as_numpy_would() -> None:
    value = rows()
    for dtype in ("float64", "float32", "int64"):
        check = NdarrayCheck(np.dtype(dtype), (None, 4))
        data = value if dtype != "int64" else [[int(x) for x in row] for row in value]
        decoded = check(data, "data")
        assert decoded.dtype == np.dtype(dtype) and decoded.shape == (ROWS, 4)
        assert np.array_equal(decoded, np.array(data).astype(dtype))


@pytest.mark.parametrize(
    ("where", "bad", "field", "message"),
    [
        (CHUNK_ROWS * 2 + 5, [1.0, 2.0, "x", 4.0], "data[16389][2]", "expected numbers, got a string"),
        (CHUNK_ROWS + 1, [1.0, 2.0, 3.0], "data", "rows have different lengths"),
        (ROWS - 1, [1.0, 2.0, None, 4.0], "data[24592][2]", "expected numbers, got null"),
        (CHUNK_ROWS * 3, 5.0, "data", "rows have different lengths"),
    ],
    ids=["string-in-third-chunk", "short-row-in-second-chunk", "null-in-last-row", "scalar-row"],
)
def test_a_refusal_in_a_later_chunk_names_the_same_field(where: int, bad: Any, field: str, message: str) -> None:
    value = rows()
    value[where] = bad
    with pytest.raises(InputError) as refused:
        NdarrayCheck(np.dtype("float64"), (None, 4))(value, "data")
    assert refused.value.field == field and message in refused.value.message


def test_integers_refuse_floats_and_booleans_in_a_later_chunk() -> None:
    value = [[i, 1, 2, 3] for i in range(ROWS)]
    value[CHUNK_ROWS + 3][1] = 1.5
    with pytest.raises(InputError) as refused:
        NdarrayCheck(np.dtype("int64"), (None, 4))(value, "data")
    assert refused.value.field == f"data[{CHUNK_ROWS + 3}][1]"
    value[CHUNK_ROWS + 3][1] = True
    decoder = RequestDecoder.from_schema(
        {"properties": {"data": {"x-gitops-ml": {"kind": "ndarray", "dtype": "int64", "shape": [None, 4]}}}}
    )
    with pytest.raises(InputError) as boolean:
        decoder.decode({"data": value}, raw=b"true")
    assert boolean.value.field == f"data[{CHUNK_ROWS + 3}][1]"

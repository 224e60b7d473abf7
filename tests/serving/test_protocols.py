"""The inference protocols beside /score, driven by clients nobody here wrote: Triton's `tritonclient`
(Open Inference Protocol over HTTP, binary tensor data and JSON) and KServe's `InferenceRESTClient`
(V1 and V2). Their answers are checked against /score's on the example's iris (a tensor) and digits
(a PNG as BYTES and a JSON input) and on a pandas model with named columns; bad requests get the
protocol's error shape with a 400/404, never a 500.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.http as tritonhttp  # a dev dependency: when missing the module fails to collect, never skips
from support import require
from tritonclient.utils import InferenceServerException

from tests.serving.conftest import EXAMPLES, KEY, Server, ServerPool

IRIS = json.loads((EXAMPLES / "iris" / "sample.json").read_text())
DIGITS = json.loads((EXAMPLES / "digits" / "sample.json").read_text())
PNG = base64.b64decode(DIGITS["image"])


def auth() -> dict[str, str]:
    # a new dict per call: tritonclient writes Inference-Header-Content-Length into the one it is given
    return {"Authorization": f"Bearer {KEY}"}


VERSION = "1.2.3"  # what the conftest pool serves

PANDAS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["rows"],
    "properties": {
        "rows": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["length", "count", "colour"],
                "properties": {
                    "length": {"type": "number"},
                    "count": {"type": "integer"},
                    "colour": {"type": "string"},
                },
            },
            "x-gitops-ml": {
                "kind": "dataframe",
                "orient": "records",
                "columns": {"length": "float64", "count": "int64", "colour": "object"},
            },
        }
    },
}
PANDAS_SCORE = '''"""Named columns in, one value per row out: what a pandas model does with a DataFrame."""

import pandas as pd


def run(frame):
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["length", "count", "colour"]
    return {"size": (frame["length"] * frame["count"]).tolist(), "label": (frame["colour"].str.upper()).tolist()}
'''
PANDAS_ROWS = [{"length": 1.5, "count": 2, "colour": "red"}, {"length": 0.25, "count": 8, "colour": "blue"}]


@pytest.fixture(scope="module")
def servers(module_servers: ServerPool, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Server]:
    pandas_dir = tmp_path_factory.mktemp("pandas-model") / "tables"
    pandas_dir.mkdir()
    (pandas_dir / "score.py").write_text(PANDAS_SCORE)
    (pandas_dir / "schema.json").write_text(json.dumps(PANDAS_SCHEMA))
    (pandas_dir / "sample.json").write_text(json.dumps({"rows": PANDAS_ROWS}))
    return {
        "iris": module_servers.start(EXAMPLES / "iris"),
        "digits": module_servers.start(EXAMPLES / "digits", batch_enabled=True),  # as its manifest sets
        "tables": module_servers.start(pandas_dir),
    }


def triton(server: Server) -> Any:
    return tritonhttp.InferenceServerClient(server.url.removeprefix("http://"))


def scored(server: Server, body: dict[str, Any]) -> Any:
    answer = server.post(body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def tensor(name: str, array: np.ndarray, datatype: str, *, binary: bool = True) -> Any:
    given = tritonhttp.InferInput(name, list(array.shape), datatype)
    given.set_data_from_numpy(array, binary_data=binary)
    return given


# --- Triton's client ---------------------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False], ids=["binary-data", "json"])
def test_tritonclient_scores_iris_as_score_does(servers: dict[str, Server], binary: bool) -> None:
    server = servers["iris"]
    client = triton(server)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("iris")
    metadata = client.get_model_metadata("iris")
    assert metadata["inputs"] == [{"name": "data", "datatype": "FP64", "shape": [-1, 4]}]
    assert VERSION in metadata["versions"]
    rows = np.array(IRIS["data"], dtype=np.float64)
    result = client.infer("iris", [tensor("data", rows, "FP64", binary=binary)], request_id="req-7", headers=auth())
    assert result.as_numpy("predictions").tolist() == scored(server, IRIS)["predictions"]
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == ("iris", VERSION, "req-7")


def test_tritonclient_reaches_the_model_by_its_version_or_major(servers: dict[str, Server]) -> None:
    server = servers["iris"]
    client = triton(server)
    rows = np.array(IRIS["data"][:1], dtype=np.float32)  # FP32 for an FP64 input: converted, as /score converts numbers
    for version in (VERSION, "1"):
        assert client.is_model_ready("iris", model_version=version)
        result = client.infer("iris", [tensor("data", rows, "FP32")], model_version=version, headers=auth())
        assert result.as_numpy("predictions").tolist() == scored(server, {"data": IRIS["data"][:1]})["predictions"]
    assert not client.is_model_ready("iris", model_version="2")


@pytest.mark.parametrize("binary", [True, False], ids=["binary-data", "json"])
def test_tritonclient_sends_a_png_as_bytes_and_json_options(servers: dict[str, Server], binary: bool) -> None:
    server = servers["digits"]
    client = triton(server)
    metadata = client.get_model_metadata("digits")
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["inputs"]] == [
        ("image", "BYTES", [1]),
        ("options", "BYTES", [1]),
    ]
    # in JSON a BYTES element is text: the image travels as base64 there, raw in binary data
    image = np.array([PNG if binary else DIGITS["image"].encode()], dtype=np.object_)
    options = np.array([json.dumps(DIGITS["options"]).encode()], dtype=np.object_)
    result = client.infer(
        "digits",
        [tensor("image", image, "BYTES", binary=binary), tensor("options", options, "BYTES", binary=binary)],
        headers=auth(),
    )
    expected = scored(server, DIGITS)
    assert result.as_numpy("digit").tolist() == [expected["digit"]]
    top = result.as_numpy("top")
    assert json.loads(top[0]) == expected["top"]


def test_tritonclient_sends_a_table_as_one_tensor_per_column(servers: dict[str, Server]) -> None:
    server = servers["tables"]
    client = triton(server)
    metadata = client.get_model_metadata("tables")
    assert [(t["name"], t["datatype"], t["shape"]) for t in metadata["inputs"]] == [
        ("length", "FP64", [-1]),
        ("count", "INT64", [-1]),
        ("colour", "BYTES", [-1]),
    ]
    assert metadata["parameters"] == {"content_type": "pd"}
    columns = [
        tensor("length", np.array([r["length"] for r in PANDAS_ROWS], dtype=np.float64), "FP64"),
        tensor("count", np.array([r["count"] for r in PANDAS_ROWS], dtype=np.int64), "INT64"),
        tensor(
            "colour", np.array([r["colour"].encode() for r in PANDAS_ROWS], dtype=np.object_), "BYTES", binary=False
        ),
    ]
    result = client.infer("tables", columns, headers=auth())
    expected = scored(server, {"rows": PANDAS_ROWS})
    assert result.as_numpy("size").tolist() == expected["size"]
    assert [v.decode() for v in result.as_numpy("label").tolist()] == expected["label"]


def bad(client: Any, model: str, inputs: list[Any], **kwargs: Any) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        client.infer(model, inputs, headers=auth(), **kwargs)
    return caught.value


def test_tritonclient_gets_400_and_404_naming_what_is_wrong(servers: dict[str, Server]) -> None:
    iris, digits = triton(servers["iris"]), triton(servers["digits"])
    rows = np.array(IRIS["data"], dtype=np.float64)
    cases = [
        (
            bad(iris, "iris", [tensor("data", np.array([[b"x"] * 4], dtype=np.object_), "BYTES")]),
            "400",
            "datatype BYTES, expected FP64",
        ),
        (bad(iris, "iris", [tensor("data", np.ones((2, 3)), "FP64")]), "400", "expected shape (n, 4), got (2, 3)"),
        (bad(iris, "iris", [tensor("rows", rows, "FP64")]), "400", "unknown input tensor 'rows'"),
        (
            bad(iris, "iris", [tensor("data", np.array([[1.5, 2, 3, 4]]), "FP64"), tensor("data", rows, "FP64")]),
            "400",
            "given twice",
        ),
        (
            bad(digits, "digits", [tensor("image", np.array([PNG], dtype=np.object_), "BYTES")]),
            "400",
            "missing input tensor 'options'",
        ),
        (
            bad(
                digits,
                "digits",
                [
                    tensor("image", np.array([b"GIF89a not a png"], dtype=np.object_), "BYTES"),
                    tensor("options", np.array([b'{"top_k": 1}'], dtype=np.object_), "BYTES"),
                ],
            ),
            "400",
            "expected image/png",
        ),
        (bad(iris, "wine", [tensor("data", rows, "FP64")]), "404", "unknown model 'wine'"),
        (bad(iris, "iris", [tensor("data", rows, "FP64")], model_version="2.0.0"), "404", "unknown version '2.0.0'"),
    ]
    for error, status, message in cases:
        assert error.status() == status and message in error.message(), (status, message, error)


def test_bad_requests_are_answered_in_the_protocols_error_shape_never_500(servers: dict[str, Server]) -> None:
    server = servers["iris"]
    bodies: list[tuple[str, bytes, dict[str, str], int]] = [
        ("/v2/models/iris/infer", b"{not json", {}, 400),
        ("/v2/models/iris/infer", b"[]", {}, 400),
        (
            "/v2/models/iris/infer",
            orjson.dumps({"inputs": [{"name": "data", "datatype": "FP64", "shape": [1, 4], "data": [1, 2, 3]}]}),
            {},
            400,
        ),
        (
            "/v2/models/iris/infer",
            orjson.dumps({"inputs": [{"name": "data", "datatype": "FP99", "shape": [1, 4], "data": [1, 2, 3, 4]}]}),
            {},
            400,
        ),
        (
            "/v2/models/iris/infer",
            orjson.dumps(
                {
                    "inputs": [
                        {"name": "data", "datatype": "FP64", "shape": [1, 4], "parameters": {"binary_data_size": 32}}
                    ]
                }
            ),
            {"Inference-Header-Content-Length": "10"},
            400,
        ),
        (
            "/v2/models/iris/infer",
            orjson.dumps(
                {
                    "inputs": [
                        {"name": "data", "datatype": "FP64", "shape": [1, 4], "parameters": {"binary_data_size": 64}}
                    ]
                }
            )
            + b"\0" * 32,
            {"Inference-Header-Content-Length": "90"},
            400,
        ),
        (
            "/v2/models/iris/infer",
            orjson.dumps(
                {"inputs": [{"name": "data", "datatype": "BOOL", "shape": [1, 4], "data": [True, False, True, True]}]}
            ),
            {},
            400,
        ),
        ("/v1/models/iris:predict", orjson.dumps({"instances": [[1, 2, 3]]}), {}, 400),
        ("/v1/models/iris:predict", orjson.dumps({"rows": [[1, 2, 3, 4]]}), {}, 400),
        ("/v1/models/wine:predict", orjson.dumps({"instances": [[1, 2, 3, 4]]}), {}, 404),
        ("/v2/models/iris/versions/7/infer", orjson.dumps({"inputs": []}), {}, 404),
    ]
    for path, content, headers, status in bodies:
        answer = server.post(content=content, path=path, headers=headers)
        assert answer.status_code == status, (path, content, answer.text)
        error = answer.json()
        assert isinstance(error["error"], str) and error["error"], answer.text
    unauthorized = httpx.post(server.url + "/v2/models/iris/infer", content=b"{}", timeout=10)
    assert unauthorized.status_code == 401 and "missing key" in unauthorized.json()["error"]
    assert server.get("/v2/models/wine").status_code == 404
    assert server.get("/v2/models/iris/versions/9/ready").status_code == 404
    assert "scoring request failed in the server" not in server.log()


def test_protocol_requests_count_and_are_captured_as_score_requests(start_server: Any) -> None:
    server = start_server(EXAMPLES / "iris", capture_enabled=True, path_prefix="/iris")
    client = triton(server)
    client.infer("iris", [tensor("data", np.array(IRIS["data"]), "FP64")], headers=auth())
    # under the endpoint's path prefix too, as a proxy that does not strip it sends them
    answer = server.post(content=orjson.dumps({"instances": IRIS["data"]}), path="/iris/v1/models/iris:predict")
    assert answer.json() == {"predictions": scored(server, IRIS)["predictions"]}
    # a refusal by the schema counts and is captured as /score's (a 422 there, the protocols' 400 here)
    bad = server.post(content=orjson.dumps({"instances": [[1, 2]]}), path="/v1/models/iris:predict")
    assert bad.status_code == 400
    assert server.metric('gitops_ml_requests_total{route="score",status="200"}') == 3
    assert server.metric('gitops_ml_requests_total{route="score",status="422"}') == 1
    assert server.metric("gitops_ml_request_duration_seconds_count") == 4
    assert server.stop() == 0
    root = server.keys_dir.parent / f"capture-{server.keys_dir.name.split('-')[1]}"
    records = [json.loads(line) for path in sorted(root.rglob("*.jsonl")) for line in path.read_text().splitlines()]
    assert len(records) == 4
    # every record holds the /score body the request stands for, and /score's answer
    scored_records = [record for record in records if record["status"] == 200]
    assert len(scored_records) == 3
    assert all(r["input"] == IRIS and r["output"] == {"predictions": [0, 1, 2]} for r in scored_records), records
    (refused,) = [record for record in records if record["status"] == 422]
    assert refused["input"] == {"data": [[1, 2]]} and "expected shape (n, 4)" in refused["output"]["error"]


# --- KServe's client ---------------------------------------------------------------------------


def kserve_python() -> Path:
    """A Python with the `kserve` package: GITOPS_ML_KSERVE_PYTHON, or a venv made once under the user's
    cache (kserve pins pandas < 3 and protobuf < 7, which the project's venv does not hold)."""
    given = os.environ.get("GITOPS_ML_KSERVE_PYTHON")
    if given:
        return Path(given)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gitops-ml" / "test-venvs" / "kserve"
    python = cache / "bin" / "python"
    if (cache / ".done").is_file():
        return python
    shutil.rmtree(cache, ignore_errors=True)
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    made = subprocess.run(
        [uv, "venv", "-q", "--python", sys.executable, str(cache)], capture_output=True, text=True, check=False
    )
    if made.returncode == 0:
        made = subprocess.run(
            [uv, "pip", "install", "-q", "--python", str(python), "kserve>=0.14"],
            capture_output=True,
            text=True,
            check=False,
        )
    require(made.returncode == 0, f"cannot make a venv with kserve: {made.stderr[-2000:]}")
    (cache / ".done").write_text("")
    return python


def kserve(server: Server, calls: list[dict[str, Any]]) -> list[Any]:
    ran = subprocess.run(
        [str(kserve_python()), str(Path(__file__).with_name("kserve_client.py")), server.url, KEY],
        input=json.dumps(calls),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    results: list[Any] = json.loads(ran.stdout)
    return results


@pytest.mark.slow
def test_kserve_client_scores_with_v1_and_v2_as_score_does(servers: dict[str, Server]) -> None:
    iris, digits, tables = servers["iris"], servers["digits"], servers["tables"]
    expected = scored(iris, IRIS)["predictions"]
    ready, live, predicted, inferred, wrong = kserve(
        iris,
        [
            {"call": "model_ready", "model": "iris"},
            {"call": "server_live", "protocol": "v2"},
            {"call": "predict", "model": "iris", "body": {"instances": IRIS["data"]}},
            {
                "call": "infer",
                "protocol": "v2",
                "model": "iris",
                "id": "k-1",
                "inputs": [
                    {"name": "data", "shape": [3, 4], "datatype": "FP64", "numpy": "float64", "data": IRIS["data"]}
                ],
            },
            {"call": "predict", "model": "iris", "body": {"instances": [[1, 2]]}},
        ],
    )
    assert ready is True and live is True
    assert predicted == {"predictions": expected}
    assert inferred["outputs"]["predictions"]["data"] == expected
    assert (inferred["model_name"], inferred["id"]) == (
        "iris",
        "k-1",
    )  # kserve's InferResponse.from_bytes drops model_version
    assert wrong["status"] == 400 and "expected shape (n, 4), got (1, 2)" in wrong["error"]

    image = {"b64": DIGITS["image"]}
    (v1,) = kserve(
        digits,
        [
            {
                "call": "predict",
                "model": "digits",
                "body": {"instances": [{"image": image, "options": DIGITS["options"]}]},
            }
        ],
    )
    assert v1 == {"predictions": [scored(digits, DIGITS)]}

    (v1_rows, v2_columns) = kserve(
        tables,
        [
            {"call": "predict", "model": "tables", "body": {"instances": PANDAS_ROWS}},
            {
                "call": "infer",
                "protocol": "v2",
                "model": "tables",
                "inputs": [
                    {
                        "name": "length",
                        "shape": [2],
                        "datatype": "FP64",
                        "numpy": "float64",
                        "data": [r["length"] for r in PANDAS_ROWS],
                    },
                    {
                        "name": "count",
                        "shape": [2],
                        "datatype": "INT64",
                        "numpy": "int64",
                        "data": [r["count"] for r in PANDAS_ROWS],
                    },
                    {"name": "colour", "shape": [2], "datatype": "BYTES", "data": [r["colour"] for r in PANDAS_ROWS]},
                ],
            },
        ],
    )
    table = scored(tables, {"rows": PANDAS_ROWS})
    assert v1_rows == {"predictions": [table]}
    assert (
        v2_columns["outputs"]["size"]["data"] == table["size"]
        and v2_columns["outputs"]["label"]["data"] == table["label"]
    )


# --- documents ---------------------------------------------------------------------------------


def test_openapi_describes_the_protocol_routes_and_docs_show_their_curl_lines(servers: dict[str, Server]) -> None:
    server = servers["iris"]
    paths = server.get("/swagger.json").json()["paths"]
    for route in (
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/iris",
        "/v2/models/iris/ready",
        "/v2/models/iris/infer",
        "/v2/models/iris/versions/{version}/infer",
        "/v1/models/iris",
        "/v1/models/iris:predict",
    ):
        assert route in paths, route
    example = paths["/v2/models/iris/infer"]["post"]["requestBody"]["content"]["application/json"]["example"]
    answer = server.post(example, path="/v2/models/iris/infer")
    assert answer.status_code == 200 and answer.json()["outputs"][0]["data"] == scored(server, IRIS)["predictions"]
    page = server.get("/docs").text
    assert "/v2/models/iris/infer" in page and "/v1/models/iris:predict" in page

"""The score.py contract at the server, with models the examples do not cover: a run() that cannot take
what the server passes is refused at start-up, bytes returned are base64, one rule for null in typed
table columns, an empty binary input is refused by the server, every credential sent must be valid,
and a key rewritten in place is seen."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from tests.serving.conftest import EXAMPLES, KEY, SECOND_KEY, Server, write_model

TWO_INPUTS = json.dumps(
    {
        "type": "object",
        "additionalProperties": False,
        "required": ["image", "options"],
        "properties": {
            "image": {
                "type": "string",
                "contentEncoding": "base64",
                "x-gitops-ml": {"kind": "binary", "media_type": "application/octet-stream", "max_bytes": 1024},
            },
            "options": {"type": "object", "x-gitops-ml": {"kind": "json"}},
        },
    }
)


def test_a_run_that_cannot_take_the_decoded_input_is_refused_at_start_up(start_server, tmp_path: Path) -> None:
    model = write_model(tmp_path / "two", "def run(image, options):\n    return len(image)\n", schema=TWO_INPUTS)
    server = start_server(model, ready=False)
    server.wait_until(lambda: server.get("/readyz").json().get("status") == "failed", "the start-up check")
    error = server.get("/readyz").json()["error"]
    assert error.endswith(
        "score.py:1:1: run(image, options) needs 2 arguments, but the server calls run(data) with one: one dict {'image': ..., 'options': ...}"
    ), error
    logged = next(json.loads(line) for line in server.stderr.read_text().splitlines() if '"level":"error"' in line)
    assert (
        logged["hint"]
        == "write `def run(data):` and take the inputs from the dict: image, options = data['image'], data['options']"
    )
    assert server.post({"image": "AAAA", "options": {}}).status_code == 503


def test_bytes_returned_by_run_are_base64(start_server, tmp_path: Path) -> None:
    score = "def run(data):\n    return {'png': b'\\x89PNG\\r\\n\\x1a\\n\\xff', 'text': bytearray(b'ok')}\n"
    server = start_server(write_model(tmp_path / "bytes", score))
    answer = server.post({"data": [[1, 2, 3, 4]]})
    assert answer.status_code == 200
    assert answer.json() == {"png": base64.b64encode(b"\x89PNG\r\n\x1a\n\xff").decode(), "text": "b2s="}
    assert "\ufffd" not in answer.text


def test_a_dataframe_with_date_times_returned_by_run_is_json(start_server, tmp_path: Path) -> None:
    score = (
        "import pandas as pd\n"
        "def run(data):\n"
        "    return pd.DataFrame({'at': pd.to_datetime(['2026-01-02T03:04:05']), 'n': [1]})\n"
    )
    server = start_server(write_model(tmp_path / "dates", score))
    answer = server.post({"data": [[1, 2, 3, 4]]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == [{"at": "2026-01-02T03:04:05", "n": 1}]


TABLE = json.dumps(
    {
        "type": "object",
        "required": ["rows"],
        "properties": {
            "rows": {
                "type": "array",
                "items": {"type": "object"},
                "x-gitops-ml": {
                    "kind": "dataframe",
                    "orient": "records",
                    "columns": {"age": "int64", "income": "float64", "vip": "bool", "city": "object"},
                },
            }
        },
    }
)


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([{"age": 30, "income": None, "vip": True, "city": "a"}], "rows[0].income"),
        (
            [
                {"age": 30, "income": 1.5, "vip": True, "city": "a"},
                {"age": 31, "income": None, "vip": False, "city": "b"},
            ],
            "rows[1].income",
        ),
        (
            [
                {"age": None, "income": 1.5, "vip": True, "city": "a"},
                {"age": 31, "income": 2.5, "vip": False, "city": "b"},
            ],
            "rows[0].age",
        ),
        ([{"age": 30, "income": 1.5, "vip": None, "city": "a"}], "rows[0].vip"),
    ],
    ids=["alone", "beside-numbers", "int-column", "bool-column"],
)
def test_a_null_in_a_typed_column_is_refused_whatever_the_other_rows(
    start_server, tmp_path: Path, rows: list[dict[str, object]], field: str
) -> None:
    score = "def run(frame):\n    return {'nan': bool(frame.isna().any().any())}\n"
    server = start_server(write_model(tmp_path / "table", score, schema=TABLE))
    answer = server.post({"rows": rows})
    assert answer.status_code == 422, answer.text
    assert answer.json()["field"] == field and answer.json()["message"].endswith("got null")
    fine = server.post({"rows": [{"age": 30, "income": 1.5, "vip": True, "city": None}]})
    assert fine.json() == {"nan": True}, "null stays allowed where the schema allows it (object columns)"


def test_an_empty_binary_input_is_refused_by_the_server(start_server, tmp_path: Path) -> None:
    score = "def run(data):\n    import io\n    raise ValueError(repr(io.BytesIO(data['image'])))\n"
    server = start_server(write_model(tmp_path / "blob", score, schema=TWO_INPUTS))
    answer = server.post({"image": "", "options": {}})
    assert answer.status_code == 422
    assert answer.json()["field"] == "image" and "empty" in answer.json()["message"]
    assert "BytesIO" not in answer.text
    document = server.get("/swagger.json").json()
    image = document["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"][
        "image"
    ]
    assert image["minLength"] == 4, "the document says so too"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"X-Api-Key": KEY, "Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"X-Api-Key": KEY, "Authorization": "Bearer"}, 401),
        ({"X-Api-Key": KEY, "Authorization": "Bearer wrong"}, 401),
        ({"X-Api-Key": "wrong", "Authorization": f"Bearer {KEY}"}, 401),
        ({"X-Api-Key": KEY, "Authorization": f"Bearer {SECOND_KEY}"}, 200),
        ({"X-Api-Key": KEY}, 200),
        ({"Authorization": f"bearer  {KEY}"}, 200),
    ],
    ids=[
        "basic-beside-key",
        "bearer-without-token",
        "wrong-bearer-beside-key",
        "wrong-key-beside-bearer",
        "both-valid",
        "key-only",
        "bearer-only",
    ],
)
def test_every_credential_sent_must_hold_a_valid_key(
    module_server_iris: Server, headers: dict[str, str], status: int
) -> None:
    sample = json.loads((EXAMPLES / "iris" / "sample.json").read_text())
    answer = module_server_iris.post(
        sample, headers={"Authorization": "", **headers}
    )  # an empty header sends no credential
    assert answer.status_code == status, answer.text


def test_a_key_rewritten_in_place_with_its_old_mtime_is_seen(start_server) -> None:
    server = start_server(EXAMPLES / "iris")
    primary = server.keys_dir / "primary"
    before = os.stat(primary)
    rotated = "x" * len(KEY)  # the same length, written into the same inode, mtime put back
    with primary.open("r+") as handle:
        handle.write(rotated + "\n")
    os.utime(primary, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(primary)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    sample = json.loads((EXAMPLES / "iris" / "sample.json").read_text())
    server.wait_until(
        lambda: server.post(sample, headers={"Authorization": f"Bearer {rotated}"}).status_code == 200,
        "the rewritten key",
        deadline=10,
    )
    assert server.post(sample).status_code == 401, "the old key is gone"

"""loading: YAML 1.2 scalars, located errors, and positions recovered only on demand."""

from __future__ import annotations

import time

import pytest

from gitops_ml.errors import LoadError
from gitops_ml.repo.loading import parse_json, parse_yaml


def test_yaml_12_scalars_no_norway_problem() -> None:
    doc = parse_yaml("f.yaml", b"a: yes\nb: no\nc: on\nd: true\ne: 2024-01-01T00:00:00Z\nf: 010\ng: 1e3\nh: 1_000\n")
    assert doc.data == {
        "a": "yes",
        "b": "no",
        "c": "on",
        "d": True,
        "e": "2024-01-01T00:00:00Z",
        "f": 10,
        "g": 1000.0,
        "h": "1_000",
    }


def test_locate_values_and_keys_in_nested_yaml() -> None:
    doc = parse_yaml("f.yaml", b"# c\na:\n  b:\n    - 1\n    - c: 2\n")
    assert str(doc.locate(["a", "b", 1, "c"])) == "f.yaml:5:10"
    assert str(doc.locate(["a", "b", 1, "c"], key=True)) == "f.yaml:5:7"
    assert doc.locate(["a", "b", 1, "c"]).json_path == "$.a.b[1].c"
    # a missing key points at the nearest parent that exists
    assert str(doc.locate(["a", "missing"])) == "f.yaml:3:3"


def test_locate_in_json() -> None:
    doc = parse_json("s.json", b'{\n  "a": [1, {"b": 2}],\n  "c": "x"\n}')
    assert str(doc.locate(["a", 1, "b"])) == "s.json:2:18"
    assert str(doc.locate(["c"])) == "s.json:3:8"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"a: 1\na: 2\n", "f.yaml:2:1: duplicate key 'a'"),
        (b"a:\n\tb: 1\n", "f.yaml:2:1: YAML syntax error: tab character; YAML indents with spaces"),
        (b"", "f.yaml:1:1: file is empty"),
        (b"---\n# nothing\n", "f.yaml:1:1: file is empty"),
        (b"a: 1\n---\nb: 2\n", "f.yaml:3:1: expected one YAML document, found several"),
        (b"ok: 1\nbad: \xff\n", "f.yaml:2:6: not valid UTF-8 (byte 0xff)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "f.yaml:1:1: binary file: expected UTF-8 text"),
        (b"? [a]\n: 1\n", "f.yaml:1:3: mapping keys must be scalars"),
    ],
)
def test_located_load_errors(raw: bytes, message: str) -> None:
    with pytest.raises(LoadError) as info:
        parse_yaml("f.yaml", raw)
    assert str(info.value) == message


def test_alias_bomb_is_refused_fast_and_small() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    start = time.process_time()
    with pytest.raises(LoadError, match="aliases expand to more than 100,000 nodes"):
        parse_yaml("bomb.yaml", "\n".join(lines).encode())
    assert time.process_time() - start < 5  # bounded work, not 10**12 nodes


def test_small_anchors_are_fine() -> None:
    doc = parse_yaml("f.yaml", b"base: &b {cpu: 1}\nother: *b\n")
    assert doc.data["other"] == {"cpu": 1}


def test_json_duplicate_keys_and_syntax() -> None:
    with pytest.raises(LoadError, match="duplicate key 'a'"):
        parse_json("s.json", b'{"a": 1, "a": 2}')
    with pytest.raises(LoadError) as info:
        parse_json("s.json", b'{\n  "a": 1,\n}')
    assert str(info.value).startswith("s.json:3:1: JSON syntax error")

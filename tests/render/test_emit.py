"""The YAML emitter: every string reads back as the same string in YAML 1.1 (PyYAML) and stays a
string for YAML 1.2 / go-yaml readers (kustomize, Argo CD); output is byte-stable."""

from __future__ import annotations

import pytest
import yaml

from gitops_ml.render.emit import scalar, to_yaml

TRICKY = [
    "yes",
    "No",
    "on",
    "OFF",
    "y",
    "N",
    "true",
    "False",
    "null",
    "~",
    "",
    "1.0",
    "1e3",
    "0x1F",
    "0o17",
    "1_000",
    ".inf",
    ".NaN",
    "1:20",
    "2024-01-01",
    "a: b",
    "key:",
    "-x",
    "- x",
    "#c",
    "a #c",
    "@x",
    "%x",
    "*x",
    "&a",
    "!t",
    "|",
    ">",
    "'q'",
    '"d"',
    "tab\there",
    "multi\nline",
    "ünï",
    "10%",
    "1Gi",
    "500m",
    "+1",
    "-1",
    ".5",
    "0.0.0.0",
    "http://x:80/p",
    "=x",
    "[a]",
    "{a}",
    "a,b",
    "?",
    "nginx.ingress.kubernetes.io/proxy-body-size",
]


def test_tricky_strings_round_trip() -> None:
    obj = {
        "list": [{"a": s, "b": [s, {"n": [s]}]} for s in TRICKY],
        "map": {s or "empty": s for s in TRICKY},
        "empty_map": {},
        "empty_list": [],
        "none": None,
        "int": 3,
        "bools": [True, False],
        "nested": [[1, 2], [{"x": 1}]],
    }
    assert yaml.safe_load(to_yaml(obj)) == obj


@pytest.mark.parametrize("text", ["y", "n", "yes", "on", "1e3", "0o17", "true", "null"])
def test_strings_other_readers_take_for_non_strings_are_quoted(text: str) -> None:
    assert scalar(text).startswith('"')


def test_layout_is_kubectl_style_sorted_with_header_and_one_newline() -> None:
    data = to_yaml({"kind": "X", "apiVersion": "v1", "spec": {"items": [{"b": 1, "a": "2"}]}}, "line one\nline two")
    assert data == b'# line one\n# line two\napiVersion: v1\nkind: X\nspec:\n  items:\n  - a: "2"\n    b: 1\n'


def test_floats_are_refused() -> None:
    with pytest.raises(TypeError):
        to_yaml({"a": 1.5})

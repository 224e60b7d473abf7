"""Editor annotations in the shipped schemas: every `examples` value and every yaml-language-server
`defaultSnippets` body, filled in the way an editor fills it, is valid where it is offered; the schemas
stay valid JSON Schema 2020-12; and annotations never sit where they would be read as a field."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from jsonschema import Draft202012Validator

from gitops_ml.repo import catalog
from gitops_ml.types import Kind

PLACEHOLDER = re.compile(r"\$\{\d+:([^}]*)\}")


def _schema(kind: Kind) -> dict[str, Any]:
    return json.loads((catalog.data_dir("schemas") / kind.schema_name).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _annotated(node: Any, pointer: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(JSON pointer, subschema) of every subschema carrying examples or defaultSnippets."""
    if isinstance(node, dict):
        if "examples" in node or "defaultSnippets" in node:
            yield pointer, node
        for key, value in node.items():
            if key in ("properties", "$defs", "patternProperties"):
                for name, sub in value.items():
                    yield from _annotated(sub, f"{pointer}/{key}/{name.replace('~', '~0').replace('/', '~1')}")
            elif key in ("items", "additionalProperties", "not", "propertyNames"):
                yield from _annotated(value, f"{pointer}/{key}")
            elif key in ("oneOf", "anyOf", "allOf"):
                for i, sub in enumerate(value):
                    yield from _annotated(sub, f"{pointer}/{key}/{i}")


def _filled(body: Any) -> Any:
    """A snippet body as the editor inserts it: placeholders take their default, "^" strings go in unquoted."""
    if isinstance(body, dict):
        return {k: _filled(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_filled(v) for v in body]
    if isinstance(body, str):
        text = PLACEHOLDER.sub(lambda m: m.group(1), body)
        return yaml.safe_load(text[1:]) if text.startswith("^") else text
    return body


def _validator(root: dict[str, Any], pointer: str) -> Draft202012Validator:
    # a schema that only refers to the annotated subschema; the document keeps its $id, so the
    # subschema's own references resolve within it
    return Draft202012Validator({"$defs": {"document": root}, "$ref": f"{root['$id']}#{pointer}"})


@pytest.mark.parametrize("kind", list(Kind), ids=lambda k: k.schema_name)
def test_examples_and_snippets_are_valid_where_offered(kind: Kind) -> None:
    root = _schema(kind)
    Draft202012Validator.check_schema(root)
    annotated = list(_annotated(root))
    assert annotated, f"{kind.schema_name} offers no examples"
    for pointer, sub in annotated:
        validator = _validator(root, pointer)
        for example in sub.get("examples", []):
            errors = [e.message for e in validator.iter_errors(example)]
            assert not errors, (kind.schema_name, pointer, example, errors)
        for snippet in sub.get("defaultSnippets", []):
            assert snippet["label"] and snippet["description"], (kind.schema_name, pointer)
            body = _filled(snippet["body"])
            errors = [e.message for e in validator.iter_errors(body)]
            assert not errors, (kind.schema_name, pointer, body, errors)


def test_a_wrong_example_would_be_caught() -> None:
    root = _schema(Kind.DEPLOYMENT)
    assert list(_validator(root, "/properties/model").iter_errors("Iris@1"))
    assert list(_validator(root, "/properties/autoscaling").iter_errors(_filled({"minReplicas": "^${1:0}"})))


def test_fields_people_fill_by_hand_offer_a_value() -> None:
    offered = {(kind, pointer) for kind in Kind for pointer, _ in _annotated(_schema(kind))}
    for kind, pointer in [
        (Kind.REPOSITORY, "/properties/image/properties/registry"),
        (Kind.REPOSITORY, "/properties/environments"),
        (Kind.MODEL, "/properties/artifact"),
        (Kind.MODEL, "/properties/artifact/properties/uri"),
        (Kind.MANIFEST, "/properties/scoring/properties/script"),
        (Kind.DEPLOYMENT, "/properties/model"),
        (Kind.DEPLOYMENT, "/properties/resources"),
        (Kind.DEPLOYMENT, "/properties/exposure/properties/host"),
        (Kind.DEPLOYMENT, "/properties/auth/properties/externalSecret"),
    ]:
        assert (kind, pointer) in offered, (kind.schema_name, pointer)


def test_shipped_schemas_are_the_source_files() -> None:
    # the editor copies (`schema export`, .gitops-ml/schemas of `init`) are these very bytes
    source = Path(__file__).resolve().parents[2] / "schemas"
    for name, data in catalog.schema_files().items():
        assert data == (source / name).read_bytes(), name

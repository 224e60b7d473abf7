"""JSON Schemas of the four kinds, read from package data; validators are built once per process.

In a wheel the schemas live in gitops_ml/_data/schemas; in a source checkout, in the top-level
schemas/ directory. Templates are found the same way.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator

from gitops_ml.data import data_dir
from gitops_ml.types import Kind

__all__ = ["data_dir", "fast_check", "is_valid", "schema", "schema_files", "validator"]


@functools.cache
def schema(kind: Kind) -> dict[str, Any]:
    with open(data_dir("schemas") / kind.schema_name, encoding="utf-8") as fh:
        return json.load(fh)  # type: ignore[no-any-return]


@functools.cache
def validator(kind: Kind) -> Draft202012Validator:
    return Draft202012Validator(schema(kind), format_checker=Draft202012Validator.FORMAT_CHECKER)


@functools.cache
def fast_check(kind: Kind) -> Any:
    """A compiled validator that only answers valid or not (about 30x faster than jsonschema);
    jsonschema then explains the rare invalid document with every finding."""
    return fastjsonschema.compile(schema(kind), use_default=False)


def is_valid(kind: Kind, data: Any) -> bool:
    try:
        fast_check(kind)(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def schema_files() -> dict[str, bytes]:
    """File name -> bytes of every shipped schema (for `schema export`)."""
    return {kind.schema_name: (data_dir("schemas") / kind.schema_name).read_bytes() for kind in Kind}

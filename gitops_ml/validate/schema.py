"""Documents -> JSON Schema findings, each located at the offending key or value, with a hint
(did you mean ...?) where one helps. Never reads files, never prints.
"""

from __future__ import annotations

import difflib
import re

from jsonschema import ValidationError as SchemaError

from gitops_ml.repo import catalog
from gitops_ml.repo.loading import Document
from gitops_ml.types import Finding, Kind


def _first_sentence(text: str) -> str:
    """The description up to its first full stop or semicolon ("e.g." and "i.e." are not full stops)."""
    return re.split(r"(?<!e\.g)(?<!i\.e)\. |; ", text, maxsplit=1)[0].rstrip(".")


def _describe(error: SchemaError, root: object = None) -> tuple[list[str | int], str, bool, str]:
    """(json path, message, point at key?, hint) for one jsonschema error."""
    path: list[str | int] = list(error.absolute_path)
    where = ".".join(str(p) for p in path) or "document"
    v = error.validator
    hint = ""
    if v == "additionalProperties":
        allowed = list((error.schema.get("properties") or {}).keys())
        extras = [k for k in error.instance if k not in allowed] if isinstance(error.instance, dict) else []
        key = extras[0] if extras else ""
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        if close:
            hint = f"did you mean {close[0]!r}?"
        msg = f"unknown field {key!r}" + (f" in {where}" if path else "")
        if close:
            msg += f"; did you mean {close[0]!r}?"
        elif allowed:
            msg += f" (allowed: {', '.join(allowed)})"
        return path + [key], msg, True, hint
    if v == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        name = missing[0] if missing else str(error.validator_value)
        schema_path = list(error.relative_schema_path)
        if len(schema_path) >= 2 and schema_path[-2] == "then" and error.parent is None:
            # an if/then pair: the field that asked for the missing one is the one to point at
            condition = next((k for k in error.instance if k in _if_required(error, root)), "") if isinstance(error.instance, dict) else ""
            if condition:
                return path + [condition], f"{where}.{condition} needs {name!r}", True, hint
        return path, f"missing required field {name!r}" + (f" in {where}" if path else ""), bool(path), hint
    if v == "type":
        expected = error.validator_value
        expected_s = " or ".join(expected) if isinstance(expected, list) else expected
        got = type(error.instance).__name__
        got = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "dict": "mapping", "list": "list", "NoneType": "null"}.get(got, got)
        if expected_s == "string" and got in {"number", "integer", "boolean"}:
            hint = "quote the value so YAML reads it as a string"
        return path, f"{where}: expected {expected_s}, got {got} {error.instance!r}", False, hint
    if v == "pattern":
        desc = error.schema.get("description", "")
        return path, f"{where}: {error.instance!r} is not valid: {_first_sentence(desc) or 'must match ' + repr(error.validator_value)}", False, hint
    if v in ("enum", "const"):
        allowed = error.validator_value if v == "enum" else [error.validator_value]
        close = difflib.get_close_matches(str(error.instance), [str(a) for a in allowed], n=1)
        hint = f"did you mean {close[0]!r}?" if close else ""
        return path, f"{where}: {error.instance!r} is not one of {', '.join(repr(a) for a in allowed)}", False, hint
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return path, f"{where}: {error.instance!r} is out of range ({v} {error.validator_value})", False, hint
    if v == "not" and "required" in (error.validator_value or {}):
        return path, f"{where}: give only one of {', '.join(error.validator_value['required'])}", False, hint
    if v == "propertyNames":
        return path, f"{where}: invalid name {error.instance!r}: {_first_sentence(error.schema.get('description', '')) or error.message}", False, hint
    if v == "anyOf" and all(set(sub) == {"required"} for sub in error.validator_value):
        names = [name for sub in error.validator_value for name in sub["required"]]
        return path, f"{where}: give one of {', '.join(names)}", False, hint
    if v in ("oneOf", "anyOf") and error.context:
        best = min(error.context, key=lambda e: len(list(e.absolute_path)))
        return path, f"{where}: {best.message}", False, hint
    return path, f"{where}: {error.message}", False, hint


def _if_required(error: SchemaError, root: object) -> list[str]:
    """The `required` list of the `if` beside the `then` that raised `error` (root: the whole schema)."""
    schema = root
    for part in list(error.absolute_schema_path)[:-2]:
        schema = schema.get(part, {}) if isinstance(schema, dict) else {}
    if isinstance(schema, dict):
        return list((schema.get("if") or {}).get("required") or [])
    return []


def schema_findings(doc: Document, kind: Kind) -> list[Finding]:
    """Every schema violation of one document, located."""
    if catalog.is_valid(kind, doc.data):
        return []
    validator = catalog.validator(kind)
    out = []
    for error in sorted(validator.iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))):
        path, message, at_key, hint = _describe(error, catalog.schema(kind))
        location = doc.locate(path, key=at_key)
        out.append(Finding(location, message, hint=hint))
    return sorted(set(out))


def kind_findings(doc: Document, expected: Kind) -> list[Finding]:
    if not isinstance(doc.data, dict):
        return [Finding(doc.locate(), f"expected a mapping with `kind: {expected.value}`, got {type(doc.data).__name__}")]
    kind = doc.data.get("kind")
    if kind is not None and kind != expected.value:
        return [Finding(doc.locate(["kind"]), f"this file must have kind {expected.value!r}, not {kind!r}")]
    return []

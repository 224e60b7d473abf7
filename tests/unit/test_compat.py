"""compat.schema_breaks: what breaks requests that used to be valid, and what does not."""

from __future__ import annotations

from gitops_ml.validate.compat import schema_breaks

BASE = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "array",
            "items": {"type": "number"},
            "x-gitops-ml": {"kind": "ndarray", "dtype": "float64", "shape": [None, 4]},
        },
        "mode": {"enum": ["fast", "exact"]},
    },
}


def _with(**changes: object) -> dict:
    new = {**BASE, "properties": {**BASE["properties"]}}
    new.update(changes)
    return new


def test_identical_and_widened_schemas_do_not_break() -> None:
    assert schema_breaks(BASE, BASE) == []
    widened = _with(
        properties={**BASE["properties"], "mode": {"enum": ["fast", "exact", "auto"]}, "extra": {"type": "string"}}
    )
    assert schema_breaks(BASE, widened) == []
    integer_to_number = schema_breaks({"type": "integer"}, {"type": "number"})
    assert integer_to_number == []


def test_breaking_changes_are_named() -> None:
    assert schema_breaks(BASE, _with(required=["data", "mode"])) == ["$.mode: now required"]
    narrowed = _with(properties={**BASE["properties"], "mode": {"enum": ["fast"]}})
    assert schema_breaks(BASE, narrowed) == ["$.mode: values ['exact'] no longer allowed"]
    retyped = _with(properties={**BASE["properties"], "data": {"type": "string"}})
    assert "$.data: type ['array'] became ['string']" in schema_breaks(BASE, retyped)
    reshaped = _with(
        properties={
            **BASE["properties"],
            "data": {
                **BASE["properties"]["data"],
                "x-gitops-ml": {"kind": "ndarray", "dtype": "float64", "shape": [None, 5]},
            },
        }
    )
    assert any("x-gitops-ml changed" in b for b in schema_breaks(BASE, reshaped))
    closed = _with(additionalProperties=False)
    assert schema_breaks(BASE, closed) == ["$: inputs not listed in the schema are now refused"]

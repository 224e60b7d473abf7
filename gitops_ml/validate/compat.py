"""Whether a new input schema still accepts every request the old one did (pure).

Used by `validate --base` (a break needs a MAJOR bump) and by `bump` (which forces MAJOR). The
comparison is conservative: it reports what it can prove breaks old requests, and a change it
does not understand (a different `$ref`, a new `not`) as a break, because a missed break costs a
production outage while a needless MAJOR bump costs a number.
"""

from __future__ import annotations

from typing import Any

_TYPES_WIDENING = {("integer", "number")}


def _types(s: dict[str, Any]) -> set[str] | None:
    t = s.get("type")
    if t is None:
        return None
    return {t} if isinstance(t, str) else set(t)


def schema_breaks(old: Any, new: Any, path: str = "$") -> list[str]:
    """Human-readable reasons why requests valid under `old` may fail under `new`."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return [] if old == new else [f"{path}: schema changed"]
    if new == old or new == {} or new is True:
        return []
    out: list[str] = []
    ot, nt = _types(old), _types(new)
    if nt is not None:
        if ot is None:
            out.append(f"{path}: now restricted to type {sorted(nt)}")
        else:
            lost = {t for t in ot - nt if not any((t, w) in _TYPES_WIDENING for w in nt)}
            if lost:
                out.append(f"{path}: type {sorted(ot)} became {sorted(nt)}")
    if "const" in new and old.get("const") != new["const"]:
        out.append(f"{path}: now must equal {new['const']!r}")
    if "enum" in new:
        old_enum = old.get("enum")
        if old_enum is None:
            out.append(f"{path}: now limited to {new['enum']!r}")
        else:
            gone = [v for v in old_enum if v not in new["enum"]]
            if gone:
                out.append(f"{path}: values {gone!r} no longer allowed")
    for key in ("minItems", "minLength", "minimum", "exclusiveMinimum", "minProperties"):
        if key in new and (key not in old or new[key] > old[key]):
            out.append(f"{path}: {key} raised to {new[key]}")
    for key in ("maxItems", "maxLength", "maximum", "exclusiveMaximum", "maxProperties"):
        if key in new and (key not in old or new[key] < old[key]):
            out.append(f"{path}: {key} lowered to {new[key]}")
    for key in ("pattern", "format", "contentEncoding", "contentMediaType", "$ref", "not"):
        if key in new and new.get(key) != old.get(key):
            out.append(f"{path}: {key} changed to {new[key]!r}")
    # objects
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    new_required = set(new.get("required", [])) - set(old.get("required", []))
    for name in sorted(new_required):
        out.append(f"{path}.{name}: now required")
    if new.get("additionalProperties") is False:
        for name in sorted(set(old_props) - set(new_props)):
            out.append(f"{path}.{name}: input removed")
        if old.get("additionalProperties", True) is not False:
            out.append(f"{path}: inputs not listed in the schema are now refused")
    for name in sorted(set(old_props) & set(new_props)):
        out.extend(schema_breaks(old_props[name], new_props[name], f"{path}.{name}"))
    # arrays
    if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
        out.extend(schema_breaks(old["items"], new["items"], f"{path}[]"))
    elif "items" in new and "items" not in old and isinstance(new["items"], dict):
        out.append(f"{path}[]: items now restricted")
    old_prefix, new_prefix = old.get("prefixItems", []), new.get("prefixItems", [])
    for i, (o, n) in enumerate(zip(old_prefix, new_prefix)):
        out.extend(schema_breaks(o, n, f"{path}[{i}]"))
    if len(new_prefix) > len(old_prefix) and old_prefix:
        out.append(f"{path}: more positional items")
    # vendor annotations that describe decoding (dtype/shape) are part of the contract too
    for key in sorted(k for k in new if k.startswith("x-")):
        if key in old and old[key] != new[key]:
            out.append(f"{path}: {key} changed from {old[key]!r} to {new[key]!r}")
    for comb in ("anyOf", "oneOf", "allOf"):
        if comb in new and new.get(comb) != old.get(comb):
            out.append(f"{path}: {comb} changed")
    return out

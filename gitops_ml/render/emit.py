"""A small deterministic YAML emitter for Kubernetes objects: block style, sorted keys, one newline.

PyYAML's dumper costs ~170 us an object, which is most of a 3,000-endpoint render; this emitter
handles only what rendered objects contain (dict, list, str, int, bool, None) and quotes every
string a YAML 1.1 or 1.2 reader (PyYAML, go-yaml in kustomize and Argo CD) could take for another type.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import yaml

_PLAIN = re.compile(r"^[A-Za-z0-9_/.][A-Za-z0-9_/.@%+=:-]*$")
# go-yaml v2 (still used by some tools) reads these as booleans; YAML 1.1 adds the rest
_AMBIGUOUS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", ""}
_RESOLVER = yaml.resolver.Resolver()


@functools.lru_cache(maxsize=65536)
def scalar(text: str) -> str:
    """`text` as a YAML scalar that reads back as exactly this string."""
    if (
        _PLAIN.match(text)
        and text.lower() not in _AMBIGUOUS
        and ": " not in text
        and not text.endswith(":")
        and _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == "tag:yaml.org,2002:str"
        and not _looks_numeric(text)
    ):
        return text
    return json.dumps(text)


_NUMERIC = re.compile(r"^[-+]?(\.?[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?|0x[0-9a-fA-F_]+|0o[0-7_]+|\.inf|\.nan)$", re.I)


def _looks_numeric(text: str) -> bool:
    # YAML 1.2 reads "1e3" and "0o17" as numbers although PyYAML (1.1) reads them as strings
    return bool(_NUMERIC.match(text))


def _scalar(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return scalar(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if value is None:
        return "null"
    if kind is dict and not value:
        return "{}"
    if kind is list and not value:
        return "[]"
    raise TypeError(f"cannot emit {kind.__name__} {value!r}: render numbers as int or str")


def _emit(value: Any, indent: str, out: list[str]) -> None:
    """Append the lines of a non-empty mapping or sequence at `indent`."""
    if type(value) is dict:
        inner = indent + "  "
        for key in sorted(value):
            item = value[key]
            kind = type(item)
            if kind is dict and item:
                out.append(f"{indent}{scalar(key)}:")
                _emit(item, inner, out)
            elif kind is list and item:
                out.append(f"{indent}{scalar(key)}:")
                _emit(item, indent, out)  # kubectl style: "- " at the key's indentation
            else:
                out.append(f"{indent}{scalar(key)}: {_scalar(item)}")
        return
    inner = indent + "  "
    cut = len(inner)
    for item in value:
        kind = type(item)
        if (kind is dict or kind is list) and item:
            start = len(out)
            _emit(item, inner, out)
            out[start] = f"{indent}- {out[start][cut:]}"
        else:
            out.append(f"{indent}- {_scalar(item)}")


def to_yaml(obj: dict[str, Any], header: str = "") -> bytes:
    """One YAML document: `# header` lines, then the object with sorted keys and a final newline."""
    out: list[str] = [f"# {line}" if line else "#" for line in header.splitlines()]
    _emit(obj, "", out)
    return ("\n".join(out) + "\n").encode("utf-8")

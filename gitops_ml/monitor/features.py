"""Features: named paths into a request (or an answer) whose values are profiled and compared.

A path reads scalars out of the JSON a client sends: `data[*][0]` (column 0 of an ndarray input),
`frame[*].age` (a DataFrame column), `options.top_k` (a nested JSON value). A path whose value is a
list yields each element (`predictions` of `{"predictions": [0, 2]}`). Which paths a model has
follows from its input schema (`features_for_schema`). Pure: no files, no engines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence, Union

from gitops_ml.errors import UsageError

ANNOTATION = "x-gitops-ml"
WILDCARD = "*"
Step = Union[str, int]
_TOKEN = re.compile(r"\[(\*|\d+)\]|\.?([A-Za-z_][A-Za-z0-9_-]*)|\.?\[\"((?:[^\"\\]|\\.)*)\"\]")


@dataclass(frozen=True)
class FeaturePath:
    """Steps into a JSON value: a key, an index, or `*` for every element of a list."""

    steps: tuple[Step, ...]

    @classmethod
    def parse(cls, text: str) -> "FeaturePath":
        steps: list[Step] = []
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos or (pos == 0 and text.startswith(".")):
                raise ValueError(f"{text!r} is not a feature path (like data[*][0], frame[*].age or options.top_k)")
            index, key, quoted = match.groups()
            if index is not None:
                steps.append(WILDCARD if index == "*" else int(index))
            else:
                steps.append(key if key is not None else quoted.replace('\\"', '"').replace("\\\\", "\\"))
            pos = match.end()
        if not steps or not isinstance(steps[0], str) or steps[0] == WILDCARD:
            raise ValueError(f"{text!r} is not a feature path: it starts with the name of an input")
        return cls(tuple(steps))

    def __str__(self) -> str:
        out = ""
        for step in self.steps:
            if isinstance(step, int):
                out += f"[{step}]"
            elif step == WILDCARD:
                out += "[*]"
            elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", step):
                out += f".{step}" if out else step
            else:
                out += '["' + step.replace("\\", "\\\\").replace('"', '\\"') + '"]'
        return out

    @property
    def input(self) -> str:
        """The top-level key: the named input (or the answer's field) the path reads."""
        first = self.steps[0]
        assert isinstance(first, str)
        return first

    def json_path(self) -> str:
        """The same path in the JSONPath dialect of SQL engines (DuckDB's json_extract)."""
        out = "$"
        for step in self.steps:
            if isinstance(step, int):
                out += f"[{step}]"
            elif step == WILDCARD:
                out += "[*]"
            else:
                out += '."' + step.replace('"', '\\"') + '"'
        return out

    @property
    def has_wildcard(self) -> bool:
        return WILDCARD in self.steps

    def values(self, document: Any) -> Iterator[Any]:
        """Scalars the path reads from a parsed JSON value (a list at the end yields its elements)."""
        yield from _walk(document, self.steps)


def _walk(node: Any, steps: Sequence[Step]) -> Iterator[Any]:
    if not steps:
        if isinstance(node, list):
            yield from (v for v in node if not isinstance(v, (list, dict)))
        elif not isinstance(node, dict):
            yield node
        return
    step, rest = steps[0], steps[1:]
    if step == WILDCARD:
        if isinstance(node, list):
            for item in node:
                yield from _walk(item, rest)
    elif isinstance(step, int):
        if isinstance(node, list) and step < len(node):
            yield from _walk(node[step], rest)
    elif isinstance(node, dict) and step in node:
        yield from _walk(node[step], rest)


@dataclass(frozen=True)
class FeatureSlot:
    """A place in the request the input schema declares, and the column of data that fills it."""

    path: FeaturePath
    column: str  # "" when the DATA's columns decide (an ndarray's positional columns)
    hint: str  # what it is, for messages: "column 0 of ndarray input 'data'"


@dataclass(frozen=True)
class SchemaFeatures:
    """What an input schema lets a profile read: named slots, positional ndarray slots, and what it cannot."""

    named: tuple[FeatureSlot, ...]
    positional: tuple[tuple[str, int], ...]  # (ndarray input, columns per row): filled by DATA's other columns
    skipped: tuple[str, ...]  # inputs that have no scalar features (images, n-d arrays), for notes


def features_for_schema(schema: Mapping[str, Any]) -> SchemaFeatures:
    """The feature slots of a request schema (schema.json with `x-gitops-ml` annotations)."""
    named: list[FeatureSlot] = []
    positional: list[tuple[str, int]] = []
    skipped: list[str] = []
    for name, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, Mapping):
            continue
        annotation = sub.get(ANNOTATION) or {}
        kind = annotation.get("kind", "json")
        if kind == "ndarray":
            shape = list(annotation.get("shape") or [None])
            if len(shape) == 1:
                named.append(FeatureSlot(FeaturePath((name, WILDCARD)), name, f"ndarray input {name!r}"))
            elif len(shape) == 2 and isinstance(shape[1], int):
                positional.append((name, shape[1]))
            else:
                skipped.append(f"{name} (an array of shape {shape}: no per-column features)")
        elif kind == "dataframe":
            columns = list((annotation.get("columns") or {}).keys())
            split = annotation.get("orient") == "split"
            for i, column in enumerate(columns):
                path = FeaturePath((name, "data", WILDCARD, i)) if split else FeaturePath((name, WILDCARD, column))
                named.append(FeatureSlot(path, column, f"column {column!r} of DataFrame input {name!r}"))
        elif kind == "binary":
            skipped.append(f"{name} (binary data)")
        else:
            named.extend(_json_slots(FeaturePath((name,)), sub))
    return SchemaFeatures(tuple(named), tuple(positional), tuple(skipped))


def _json_slots(path: FeaturePath, schema: Mapping[str, Any]) -> Iterator[FeatureSlot]:
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        for key, sub in (schema.get("properties") or {}).items():
            if isinstance(sub, Mapping):
                yield from _json_slots(FeaturePath((*path.steps, key)), sub)
    elif kind == "array":
        items = schema.get("items")
        if isinstance(items, Mapping) and items.get("type") not in ("object", "array"):
            yield FeatureSlot(FeaturePath((*path.steps, WILDCARD)), str(path), f"JSON input {path}")
    else:
        yield FeatureSlot(path, str(path), f"JSON input {path}")


@dataclass(frozen=True)
class Assignment:
    """Which DATA column fills which feature path (and what could not be matched)."""

    features: tuple[tuple[str, FeaturePath], ...]  # (column, path)
    predictions: tuple[tuple[str, FeaturePath], ...]
    notes: tuple[str, ...]


def assign_columns(columns: Sequence[str], slots: SchemaFeatures, predictions: Sequence[str]) -> Assignment:
    """Match a table's columns to the schema's slots: named slots by column name; the one positional
    ndarray input by the remaining columns in order. `predictions` are `COLUMN` or `COLUMN=PATH` into
    the answer. UsageError when the columns cannot fill the schema unambiguously."""
    notes: list[str] = [f"input {s} is not profiled" for s in slots.skipped]
    out_predictions: list[tuple[str, FeaturePath]] = []
    for spec in predictions:
        column, _, path_text = spec.partition("=")
        if column not in columns:
            raise UsageError(f"--prediction {column}: the data has no column {column!r}", hint=f"columns: {', '.join(columns)}")
        try:
            out_predictions.append((column, FeaturePath.parse(path_text) if path_text else FeaturePath((column,))))
        except ValueError as exc:
            raise UsageError(f"--prediction {spec}: {exc}") from exc
    taken = {c for c, _ in out_predictions}
    features: list[tuple[str, FeaturePath]] = []
    by_path = {str(s.path): s for s in slots.named}
    for column in columns:
        if column in by_path and column not in taken:  # a column named by its path: data[*][0]
            features.append((column, by_path.pop(column).path))
            taken.add(column)
    for slot in list(by_path.values()):
        if slot.column in columns and slot.column not in taken:
            features.append((slot.column, slot.path))
            taken.add(slot.column)
        else:
            notes.append(f"{slot.hint} ({slot.path}) has no column in the data: not profiled")
    rest = [c for c in columns if c not in taken]
    widths = dict(slots.positional)
    for column in list(rest):  # columns named by path: data[*][2]
        path = _path_or_none(column)
        if path is not None and path.input in widths and len(path.steps) == 3 and path.steps[1] == WILDCARD and isinstance(path.steps[2], int) and path.steps[2] < widths[path.input]:
            features.append((column, path))
            rest.remove(column)
    named_by_path = {p.input for _, p in features}
    unfilled = [(n, w) for n, w in slots.positional if n not in named_by_path]
    if len(unfilled) == 1:
        name, width = unfilled[0]
        if len(rest) != width:
            raise UsageError(
                f"input {name!r} takes {width} numbers per row, and the data has {len(rest)} other column(s): {', '.join(rest) or 'none'}",
                hint="give the data exactly those columns in the order the model reads them (predictions go in --prediction)",
            )
        features.extend((column, FeaturePath((name, WILDCARD, i))) for i, column in enumerate(rest))
        rest = []
    elif len(unfilled) > 1:
        notes.append("several ndarray inputs: name the data's columns by path, e.g. " + ", ".join(f"{n}[*][0]" for n, _ in unfilled))
    notes.extend(f"column {c!r} matches no input and is not profiled" for c in rest)
    if not features and not out_predictions:
        raise UsageError("nothing to profile: no column of the data matches the model's input schema, and no --prediction was given")
    return Assignment(tuple(features), tuple(out_predictions), tuple(notes))


def _path_or_none(text: str) -> FeaturePath | None:
    try:
        return FeaturePath.parse(text)
    except ValueError:
        return None

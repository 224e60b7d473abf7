"""Request decoding: a schema.json compiled once into checks that turn a parsed JSON body into the
values `run` receives (NumPy arrays, DataFrames, bytes, plain JSON), or an InputError naming the field.

Compiled, not interpreted: no JSON Schema library runs per request. Supported keywords for `json`
inputs: type, enum, const, properties, required, additionalProperties, items, prefixItems,
minItems, maxItems, minimum, maximum, exclusiveMinimum, exclusiveMaximum, minLength, maxLength,
pattern; other keywords are ignored (and listed by `unsupported_keywords`).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass
from itertools import chain
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from gitops_ml.serving.inference import ANNOTATION, MAGIC, sniff_media_type

SUPPORTED_KEYWORDS = frozenset(
    "type enum const properties required additionalProperties items prefixItems minItems maxItems minimum maximum "
    "exclusiveMinimum exclusiveMaximum minLength maxLength pattern".split()
    + "$schema $id title description examples default format contentEncoding contentMediaType $comment".split()
    + [ANNOTATION]
)


class InputError(ValueError):
    """Raised when a request (or, from score.py, an input) does not fit the schema: answered 422.

    `field` is a JSON-path-like name of the offending input (`data[0][2]`, `image`), `expected`
    says what would have fitted. score.py may raise it too, to refuse an input with a 422.
    """

    def __init__(self, message: str, *, field: str = "", expected: str = "", status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.expected = expected
        self.status = status


Check = Callable[[Any, str], Any]
_KINDS = {"b": "booleans", "i": "integers", "u": "non-negative integers", "f": "numbers"}
# which NumPy kinds a target kind accepts without losing meaning (ints are exact floats here)
_ACCEPTS = {"f": "fiu", "i": "iu", "u": "iu", "b": "b"}
# rows of a long array converted per step (see NdarrayCheck._convert_in_chunks): a few milliseconds each
CHUNK_ROWS = 8192


@dataclass(frozen=True)
class RequestDecoder:
    """Decodes a parsed request body into {input name: decoded value}."""

    fields: Mapping[str, Check]
    required: tuple[str, ...]
    allow_unknown: bool

    @classmethod
    def from_schema(cls, schema: Mapping[str, Any]) -> "RequestDecoder":
        properties = schema.get("properties") or {}
        fields = {name: compile_input(name, sub) for name, sub in properties.items()}
        return cls(
            fields=fields,
            required=tuple(schema.get("required") or ()),
            allow_unknown=schema.get("additionalProperties", True) is not False,
        )

    def decode(self, body: Any, *, raw: bytes | None = None) -> dict[str, Any]:
        """{input name: decoded value}, or InputError.

        `raw` is the body `body` was parsed from: with it, arrays of numbers are searched for JSON
        booleans (which NumPy would turn into 1 and 0) only when the body holds a `true` or `false`;
        without it they are always searched, which costs about 0.1 s per million rows.
        """
        if type(body) is not dict:
            raise InputError(
                f"the request body must be a JSON object of named inputs, got {_json_type(body)}",
                expected="object with " + ", ".join(repr(n) for n in self.fields) if self.fields else "object",
            )
        out = {}
        fields = self.fields
        booleans: bool | None = None  # whether arrays of numbers need searching: decided when one is met
        for name, value in body.items():
            check = fields.get(name)
            if check is None:
                if not self.allow_unknown:
                    raise InputError(
                        f"unknown input {name!r}",
                        field=name,
                        expected="one of " + ", ".join(repr(n) for n in fields) if fields else "no inputs",
                    )
                out[name] = value
                continue
            out[name] = check(value, name)
            if type(check) is NdarrayCheck and check.kind != "b":
                if booleans is None:
                    booleans = raw is None or _may_hold_booleans(raw)
                if booleans:
                    check.refuse_booleans(value, name)
        if len(out) < len(self.required):
            for name in self.required:
                if name not in out:
                    raise InputError(f"missing input {name!r}", field=name, expected=_describe(name, fields))
        return out


def _may_hold_booleans(raw: bytes) -> bool:
    # a JSON boolean is the bytes `true` or `false`; numbers never hold a "u" or an "l", so the
    # one-byte searches (memchr) usually settle it for a body of numbers
    return (b"u" in raw and b"true" in raw) or (b"l" in raw and b"false" in raw)


def _describe(name: str, fields: Mapping[str, Check]) -> str:
    check = fields.get(name)
    return getattr(check, "expected", "a value")


def compile_input(name: str, schema: Mapping[str, Any]) -> Check:
    """The check for one named input, chosen by its `x-gitops-ml` annotation (plain JSON if none)."""
    annotation = schema.get(ANNOTATION) or {}
    kind = annotation.get("kind", "json")
    if kind == "ndarray":
        return NdarrayCheck(np.dtype(annotation.get("dtype", "float64")), tuple(annotation.get("shape") or (None,)))
    if kind == "dataframe":
        return DataFrameCheck(annotation.get("orient", "records"), dict(annotation.get("columns") or {}), frozenset(annotation.get("optional") or ()))
    if kind == "binary":
        return BinaryCheck(annotation.get("media_type") or schema.get("contentMediaType") or "", int(annotation.get("max_bytes", 1 << 20)))
    if kind == "json":
        return compile_json(schema)
    raise ValueError(f"input {name!r}: unknown {ANNOTATION} kind {kind!r}")


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("n" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


class NdarrayCheck:
    """A nested JSON array -> np.ndarray of the annotated dtype and shape (None = any size)."""

    def __init__(self, dtype: np.dtype, shape: tuple[int | None, ...]) -> None:
        self.dtype = dtype
        self.shape = shape
        self.ndim = len(shape)
        self.kind = dtype.kind
        self.accepts = _ACCEPTS.get(dtype.kind, dtype.kind)
        self.expected = f"{_KINDS.get(self.kind, dtype.name)} ({dtype.name}) in an array of shape {_shape_text(shape)}"

    def __call__(self, value: Any, field: str) -> np.ndarray:
        if type(value) is not list:
            if type(value) is np.ndarray:  # a tensor of the inference protocols' binary data
                return self._check_array(value, value, field)
            raise InputError(f"{field}: expected an array, got {_json_type(value)}", field=field, expected=self.expected)
        if len(value) > CHUNK_ROWS:
            return self._convert_in_chunks(value, field)
        return self._convert(value, field)

    def _convert(self, value: list[Any], field: str) -> np.ndarray:
        try:
            array = np.array(value)
        except ValueError:  # NumPy refuses ragged nesting
            raise InputError(f"{field}: rows have different lengths", field=field, expected=self.expected) from None
        return self._check_array(array, value, field)

    def _check_array(self, array: np.ndarray, value: Any, field: str) -> np.ndarray:
        if array.dtype.kind not in self.accepts:
            if type(value) is np.ndarray:
                raise InputError(f"{field}: expected {_KINDS.get(self.kind, self.dtype.name)}, got {array.dtype.name}", field=field, expected=self.expected)
            where, got = _first_bad_leaf(value, field, self.kind)
            raise InputError(f"{where}: expected {_KINDS.get(self.kind, self.dtype.name)}, got {got}", field=where, expected=self.expected)
        if array.ndim != self.ndim or array.size == 0:
            raise InputError(
                f"{field}: expected shape {_shape_text(self.shape)}, got {_shape_text(array.shape)}",
                field=field,
                expected=self.expected,
            )
        for axis, want in enumerate(self.shape):
            if want is not None and array.shape[axis] != want:
                raise InputError(
                    f"{field}: expected shape {_shape_text(self.shape)}, got {_shape_text(array.shape)}",
                    field=field,
                    expected=self.expected,
                )
        if self.kind == "u" and array.dtype.kind == "i" and array.min() < 0:
            raise InputError(f"{field}: negative value in an unsigned array", field=field, expected=self.expected)
        if array.dtype != self.dtype:
            array = array.astype(self.dtype)
        return array

    def _convert_in_chunks(self, value: list[Any], field: str) -> np.ndarray:
        """A long array converted CHUNK_ROWS rows at a time into its final buffer: the interpreter lock is
        held for milliseconds at a time, not for the whole array (the event loop keeps answering probes),
        and NumPy's temporaries are a chunk's, not the whole array's. Any refusal is reported by
        converting the whole array, so its message is the same as for a short one."""
        try:
            first = self._convert(value[:CHUNK_ROWS], field)
            out = np.empty((len(value), *first.shape[1:]), dtype=self.dtype)
            out[:CHUNK_ROWS] = first
            tail = first.shape[1:]
            for start in range(CHUNK_ROWS, len(value), CHUNK_ROWS):
                part = self._convert(value[start : start + CHUNK_ROWS], field)
                if part.shape[1:] != tail:
                    raise InputError(f"{field}: rows have different lengths", field=field, expected=self.expected)
                out[start : start + len(part)] = part
            return out
        except InputError:
            self._convert(value, field)  # raises the located refusal
            raise

    def refuse_booleans(self, value: list[Any], field: str) -> None:
        """InputError for the first JSON boolean in `value`, an array this check has accepted.

        NumPy turns booleans mixed with numbers into 1 and 0, so an accepted array may still hold
        some. Accepted means regular, so flattening ndim - 1 levels reaches every element.
        """
        if type(value) is not list:
            return  # an array from binary data holds no JSON booleans
        flat: Any = value
        for _ in range(self.ndim - 1):
            flat = chain.from_iterable(flat)
        if bool in map(type, flat):
            where, got = _first_bad_leaf(value, field, self.kind)
            raise InputError(f"{where}: expected {_KINDS.get(self.kind, self.dtype.name)}, got {got}", field=where, expected=self.expected)


def _first_bad_leaf(value: Any, field: str, kind: str) -> tuple[str, str]:
    """Path and JSON type of the first element that is not a number of `kind` (error path only)."""
    stack: list[tuple[str, Any]] = [(field, value)]
    while stack:
        path, item = stack.pop()
        if type(item) is list:
            stack.extend(reversed([(f"{path}[{i}]", v) for i, v in enumerate(item)]))
            continue
        ok = (
            (kind == "b" and type(item) is bool)
            or (kind in "iu" and type(item) is int)
            or (kind == "f" and type(item) in (int, float))
        )
        if not ok:
            return path, _json_type(item)
    return field, "a mix of nesting depths"


class DataFrameCheck:
    """Records (`[{col: v}, ...]`) or split (`{"columns": [...], "data": [[...]]}`) -> pd.DataFrame."""

    def __init__(self, orient: str, columns: dict[str, str], optional: frozenset[str] = frozenset()) -> None:
        self.orient = orient
        self.columns = columns
        self.names = list(columns)
        self.name_set = set(columns)
        # optional columns (an MLflow signature's `required: false`) may be left out of a record or be
        # null: the frame still has the column, with NaN (numbers) or None in those cells
        self.optional = optional & self.name_set
        self.required_set = self.name_set - self.optional
        self.expected = (
            f"a table ({orient} orientation) with columns " + ", ".join(f"{c}: {t}{' (optional)' if c in self.optional else ''}" for c, t in columns.items())
        )

    def __call__(self, value: Any, field: str) -> pd.DataFrame:
        if self.orient == "split":
            rows = self._split_rows(value, field)
        else:
            rows = self._record_rows(value, field)
        frame = pd.DataFrame(rows, columns=self.names)
        for name, dtype in self.columns.items():
            if name in self.optional and frame[name].isna().any():
                frame[name] = self._cast_optional(frame[name], name, dtype, field)
                continue
            if dtype != "object":
                self._refuse_nulls(frame[name], name, dtype, field)
            frame[name] = self._cast(frame[name], name, dtype, field)
        return frame

    def _refuse_nulls(self, column: pd.Series, name: str, dtype: str, field: str) -> None:
        """One rule for null in a typed column, whether or not other rows hold values: refused, as the
        schema says (its cells are numbers, booleans or date-times, never null). JSON has no NaN, so
        every missing value here was a null."""
        missing = column.isna().to_numpy()
        if not missing.any():
            return
        row = int(missing.argmax())
        if self.orient == "split":
            where = f"{field}.data[{row}][{self.names.index(name)}]"
        else:
            where = f"{field}[{row}].{name}"
        kind = np.dtype(dtype).kind
        wanted = "a date-time" if kind == "M" else _KINDS.get(kind, dtype)
        raise InputError(f"{where}: expected {wanted}, got null", field=where, expected=self.expected)
    def _cast_optional(self, column: pd.Series, name: str, dtype: str, field: str) -> pd.Series:
        """An optional column with missing cells: numbers become float64 with NaN there (integers
        cannot hold a missing value), anything else keeps None."""
        present = column.dropna()
        if not present.empty:
            self._cast(present, name, dtype, field)  # the cells given must still fit the column's type
        if dtype != "object" and np.dtype(dtype).kind in "iuf":
            return column.astype("float64")
        return column.astype(object).where(column.notna(), None)

    def _record_rows(self, value: Any, field: str) -> list[list[Any]]:
        if type(value) is not list or not value:
            raise InputError(f"{field}: expected a non-empty array of records", field=field, expected=self.expected)
        rows = []
        names, name_set = self.names, self.name_set
        for i, record in enumerate(value):
            if type(record) is not dict:
                raise InputError(f"{field}[{i}]: expected an object, got {_json_type(record)}", field=f"{field}[{i}]", expected=self.expected)
            if record.keys() != name_set and not (self.optional and record.keys() <= name_set and record.keys() >= self.required_set):
                missing = [c for c in names if c not in record and c not in self.optional]
                extra = [c for c in record if c not in name_set]
                what = f"missing column {missing[0]!r}" if missing else f"unknown column {extra[0]!r}"
                bad = missing[0] if missing else extra[0]
                raise InputError(f"{field}[{i}]: {what}", field=f"{field}[{i}].{bad}", expected=self.expected)
            rows.append([record[c] for c in names] if len(record) == len(names) else [record.get(c) for c in names])
        return rows

    def _split_rows(self, value: Any, field: str) -> list[Any]:
        if type(value) is not dict or "data" not in value or "columns" not in value:
            raise InputError(f"{field}: expected an object with 'columns' and 'data'", field=field, expected=self.expected)
        if value["columns"] != self.names:
            raise InputError(f"{field}.columns: expected {self.names}", field=f"{field}.columns", expected=self.expected)
        data = value["data"]
        if type(data) is not list or not data:
            raise InputError(f"{field}.data: expected a non-empty array of rows", field=f"{field}.data", expected=self.expected)
        width = len(self.names)
        for i, row in enumerate(data):
            if type(row) is not list or len(row) != width:
                raise InputError(f"{field}.data[{i}]: expected a row of {width} values", field=f"{field}.data[{i}]", expected=self.expected)
        return data

    def _cast(self, column: pd.Series, name: str, dtype: str, field: str) -> pd.Series:
        where = f"{field}.{name}"
        if dtype == "object":
            return column
        target = np.dtype(dtype)
        if target.kind == "M":
            try:
                return pd.to_datetime(column, utc=False)
            except (ValueError, TypeError) as exc:
                raise InputError(f"{where}: not a date-time ({exc})", field=where, expected=self.expected) from None
        if column.dtype.kind not in _ACCEPTS.get(target.kind, target.kind):
            bad = next((v for v in column.tolist() if _json_kind(v) not in _ACCEPTS.get(target.kind, "")), None)
            raise InputError(
                f"{where}: expected {_KINDS.get(target.kind, dtype)}, got {_json_type(bad)}", field=where, expected=self.expected
            )
        return column.astype(target) if column.dtype != target else column


def _json_kind(value: Any) -> str:
    return {bool: "b", int: "i", float: "f"}.get(type(value), "O")


class BinaryCheck:
    """A base64 string -> bytes, within `max_bytes`, with the declared media type's magic bytes."""

    def __init__(self, media_type: str, max_bytes: int) -> None:
        self.media_type = media_type
        self.max_bytes = max_bytes
        self.max_chars = 4 * -(-max_bytes // 3)
        self.magic = tuple(m for m, t in MAGIC if t == media_type)
        self.expected = f"base64-encoded {media_type or 'bytes'}, at most {max_bytes} bytes"

    def __call__(self, value: Any, field: str) -> bytes:
        if type(value) is bytes:  # raw bytes from the inference protocols' binary data
            return self._check_bytes(value, field)
        if type(value) is not str:
            raise InputError(f"{field}: expected a base64 string, got {_json_type(value)}", field=field, expected=self.expected)
        if len(value) > self.max_chars:
            raise InputError(
                f"{field}: {len(value) * 3 // 4} bytes is over the limit of {self.max_bytes}",
                field=field,
                expected=self.expected,
                status=413,
            )
        if not value:
            # nothing a model can read, and a score.py would fail on it in its own words
            raise InputError(f"{field}: empty; expected at least one byte", field=field, expected=self.expected)
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise InputError(f"{field}: not valid base64", field=field, expected=self.expected) from None
        return self._check_bytes(data, field)

    def _check_bytes(self, data: bytes, field: str) -> bytes:
        if len(data) > self.max_bytes:
            raise InputError(f"{field}: {len(data)} bytes is over the limit of {self.max_bytes}", field=field, expected=self.expected, status=413)
        if not data:
            raise InputError(f"{field}: empty; expected at least one byte", field=field, expected=self.expected)
        if self.magic and not data.startswith(self.magic):
            got = sniff_media_type(data) or "unrecognised bytes"
            raise InputError(f"{field}: expected {self.media_type}, got {got}", field=field, expected=self.expected)
        return data


# --- plain JSON --------------------------------------------------------------------------------

_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: type(v) is bool,
    "integer": lambda v: type(v) is int or (type(v) is float and v.is_integer()),
    "number": lambda v: type(v) in (int, float),
    "string": lambda v: type(v) is str,
    "array": lambda v: type(v) is list,
    "object": lambda v: type(v) is dict,
}


def unsupported_keywords(schema: Any, path: str = "") -> list[str]:
    """JSON paths of keywords the compiled checks ignore (reported once at start)."""
    found: list[str] = []
    if isinstance(schema, dict):
        for key, sub in schema.items():
            if key not in SUPPORTED_KEYWORDS:
                found.append(f"{path}/{key}")
            elif key in ("properties",) and isinstance(sub, dict):
                for name, s in sub.items():
                    found += unsupported_keywords(s, f"{path}/properties/{name}")
            elif key in ("items", "additionalProperties"):
                found += unsupported_keywords(sub, f"{path}/{key}")
            elif key == "prefixItems" and isinstance(sub, list):
                for i, s in enumerate(sub):
                    found += unsupported_keywords(s, f"{path}/prefixItems/{i}")
    return found


def compile_json(schema: Any) -> Check:
    """A check for plain JSON against a JSON Schema subset; returns the value unchanged."""
    if schema is True or not isinstance(schema, dict):
        return _accept
    checks: list[Check] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        tests = [_TYPE_TESTS[t] for t in names if t in _TYPE_TESTS]
        wanted = " or ".join(names)

        def check_type(v: Any, f: str) -> None:
            for test in tests:
                if test(v):
                    return
            raise InputError(f"{f}: expected {wanted}, got {_json_type(v)}", field=f, expected=wanted)

        checks.append(check_type)
    if "const" in schema:
        const = schema["const"]

        def check_const(v: Any, f: str) -> None:
            if v != const or type(v) is bool and type(const) is not bool:
                raise InputError(f"{f}: expected {const!r}", field=f, expected=repr(const))

        checks.append(check_const)
    if "enum" in schema:
        options = list(schema["enum"])

        def check_enum(v: Any, f: str) -> None:
            if not any(v == o and (type(v) is bool) == (type(o) is bool) for o in options):
                raise InputError(f"{f}: expected one of {options}", field=f, expected=f"one of {options}")

        checks.append(check_enum)
    checks += _number_checks(schema) + _string_checks(schema) + _array_checks(schema) + _object_checks(schema)
    if not checks:
        return _accept

    def check(value: Any, field: str) -> Any:
        for c in checks:
            c(value, field)
        return value

    check.expected = str(types or "JSON")  # type: ignore[attr-defined]
    return check


def _accept(value: Any, field: str) -> Any:
    return value


def _number_checks(schema: dict[str, Any]) -> list[Check]:
    bounds = [(k, schema[k]) for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum") if k in schema]
    if not bounds:
        return []
    ops: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
        "minimum": (lambda v, b: v >= b, ">="),
        "maximum": (lambda v, b: v <= b, "<="),
        "exclusiveMinimum": (lambda v, b: v > b, ">"),
        "exclusiveMaximum": (lambda v, b: v < b, "<"),
    }

    def check(v: Any, f: str) -> None:
        if type(v) not in (int, float):
            return
        for key, bound in bounds:
            test, sign = ops[key]
            if not test(v, bound):
                raise InputError(f"{f}: must be {sign} {bound}", field=f, expected=f"a number {sign} {bound}")

    return [check]


def _string_checks(schema: dict[str, Any]) -> list[Check]:
    lo, hi, pattern = schema.get("minLength"), schema.get("maxLength"), schema.get("pattern")
    if lo is None and hi is None and pattern is None:
        return []
    regex = re.compile(pattern) if pattern is not None else None

    def check(v: Any, f: str) -> None:
        if type(v) is not str:
            return
        if lo is not None and len(v) < lo:
            raise InputError(f"{f}: shorter than {lo} characters", field=f, expected=f"at least {lo} characters")
        if hi is not None and len(v) > hi:
            raise InputError(f"{f}: longer than {hi} characters", field=f, expected=f"at most {hi} characters")
        if regex is not None and not regex.search(v):
            raise InputError(f"{f}: does not match {pattern!r}", field=f, expected=f"a string matching {pattern!r}")

    return [check]


def _array_checks(schema: dict[str, Any]) -> list[Check]:
    lo, hi = schema.get("minItems"), schema.get("maxItems")
    prefix = [compile_json(s) for s in schema.get("prefixItems") or ()]
    items = compile_json(schema["items"]) if "items" in schema else None
    if lo is None and hi is None and not prefix and items is None:
        return []

    def check(v: Any, f: str) -> None:
        if type(v) is not list:
            return
        if lo is not None and len(v) < lo:
            raise InputError(f"{f}: fewer than {lo} items", field=f, expected=f"at least {lo} items")
        if hi is not None and len(v) > hi:
            raise InputError(f"{f}: more than {hi} items", field=f, expected=f"at most {hi} items")
        for i, item in enumerate(v):
            sub = prefix[i] if i < len(prefix) else items
            if sub is not None:
                sub(item, f"{f}[{i}]")

    return [check]


def _object_checks(schema: dict[str, Any]) -> list[Check]:
    props = {k: compile_json(s) for k, s in (schema.get("properties") or {}).items()}
    required = list(schema.get("required") or ())
    extra = schema.get("additionalProperties", True)
    extra_check = None if extra is True else (None if extra is False else compile_json(extra))
    if not props and not required and extra is True:
        return []

    def check(v: Any, f: str) -> None:
        if type(v) is not dict:
            return
        for name in required:
            if name not in v:
                raise InputError(f"{f}: missing {name!r}", field=f"{f}.{name}", expected=f"an object with {name!r}")
        for name, item in v.items():
            sub = props.get(name)
            if sub is not None:
                sub(item, f"{f}.{name}")
            elif extra is False:
                raise InputError(f"{f}: unknown key {name!r}", field=f"{f}.{name}", expected="keys " + ", ".join(props))
            elif extra_check is not None:
                extra_check(item, f"{f}.{name}")

    return [check]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a non-finite number" if not math.isfinite(value) else "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__

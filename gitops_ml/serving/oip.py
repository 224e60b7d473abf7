"""The Open Inference Protocol ("v2", KServe V2, Triton, MLServer) over REST: tensors mapped onto the
model's schema.json inputs and back. A request becomes the same named inputs a /score body holds (then
the same decoder checks them); the /score answer becomes output tensors. Triton's binary tensor data
extension is read (inputs) and written when asked (outputs). Knows nothing of routes, keys or queues.

Mapping: an ndarray input is one tensor of its name; a DataFrame input is one tensor per column (as
MLServer's pandas codec sends it); a binary input is a BYTES tensor of one element (raw bytes in binary
data, base64 in JSON); a plain JSON input is a BYTES tensor holding its JSON text.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import orjson

from gitops_ml.serving.bodies import Decoded, Refusal, held_bytes
from gitops_ml.serving.decoding import DataFrameCheck, InputError, NdarrayCheck, RequestDecoder
from gitops_ml.serving.inference import ANNOTATION

# OIP datatype <-> NumPy dtype (BYTES is a sequence of byte strings, not a NumPy dtype)
DATATYPES: Mapping[str, np.dtype] = {
    name: np.dtype(dtype)
    for name, dtype in (
        ("BOOL", "bool"),
        ("UINT8", "uint8"),
        ("UINT16", "uint16"),
        ("UINT32", "uint32"),
        ("UINT64", "uint64"),
        ("INT8", "int8"),
        ("INT16", "int16"),
        ("INT32", "int32"),
        ("INT64", "int64"),
        ("FP16", "float16"),
        ("FP32", "float32"),
        ("FP64", "float64"),
    )
}
BYTES = "BYTES"
_OF_DTYPE = {dtype.name: name for name, dtype in DATATYPES.items()}
# which NumPy kinds a schema's dtype accepts (as /score: integers are exact floats, nothing is a boolean)
_ACCEPTS = {"f": "fiu", "i": "iu", "u": "iu", "b": "b"}
JSON_CONTENT = "application/json"  # parameters.content_type of a BYTES tensor holding JSON text
HEADER_LENGTH = "inference-header-content-length"


class ProtocolError(Exception):
    """A request that does not follow the protocol or the model's inputs: answered 400 (or `status`)."""

    def __init__(self, message: str, *, field: str = "", expected: str = "", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.expected = expected
        self.status = status


@dataclass(frozen=True)
class Tensor:
    """One input tensor the endpoint takes: its OIP name, datatype and shape (-1: any size), and where
    it goes in the /score body: input `target` (a column `column` of it for a DataFrame input)."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    kind: str  # ndarray, column, binary, json
    target: str
    column: str = ""
    required: bool = True

    def metadata(self) -> dict[str, Any]:
        described: dict[str, Any] = {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}
        if self.kind == "json":
            described["parameters"] = {"content_type": JSON_CONTENT}
        elif self.kind == "binary":
            described["parameters"] = {"content_type": "base64 in JSON, raw bytes in binary data"}
        elif self.kind == "column" and self.datatype == BYTES:
            described["parameters"] = {"content_type": "str"}
        return described


@dataclass(frozen=True)
class Layout:
    """The endpoint's tensors, learnt once from schema.json; decodes requests and encodes answers."""

    tensors: Mapping[str, Tensor]
    frames: Mapping[str, DataFrameCheck]  # DataFrame inputs by name
    decoder: RequestDecoder
    single_input: str | None
    outputs: tuple[dict[str, Any], ...]

    @classmethod
    def from_schema(cls, schema: Mapping[str, Any], decoder: RequestDecoder, output_schema: Any = None) -> "Layout":
        properties = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        tensors: dict[str, Tensor] = {}
        frames: dict[str, DataFrameCheck] = {}
        for name, sub in properties.items():
            check = decoder.fields[name]
            annotation = (sub.get(ANNOTATION) if isinstance(sub, Mapping) else None) or {}
            kind = annotation.get("kind", "json")
            if isinstance(check, NdarrayCheck):
                datatype = _OF_DTYPE.get(check.dtype.name, "FP64")
                shape = tuple(-1 if d is None else int(d) for d in check.shape)
                tensors[name] = Tensor(name, datatype, shape, "ndarray", name, required=name in required)
            elif isinstance(check, DataFrameCheck):
                frames[name] = check
                for column, dtype in check.columns.items():
                    datatype = (
                        BYTES
                        if dtype == "object" or dtype.startswith("datetime")
                        else _OF_DTYPE.get(np.dtype(dtype).name, "FP64")
                    )
                    needed = name in required and column not in check.optional
                    tensors[column] = Tensor(column, datatype, (-1,), "column", name, column, needed)
            elif kind == "binary":
                tensors[name] = Tensor(name, BYTES, (1,), "binary", name, required=name in required)
            else:
                tensors[name] = Tensor(name, BYTES, (1,), "json", name, required=name in required)
        single = next(iter(decoder.fields)) if len(decoder.fields) == 1 else None
        return cls(tensors, frames, decoder, single, _output_metadata(output_schema))

    def inputs_metadata(self) -> list[dict[str, Any]]:
        return [tensor.metadata() for tensor in self.tensors.values()]

    def example(self, sample: Any) -> dict[str, Any] | None:
        """The inference request that stands for the model's sample (the documents' example), or None."""
        if not isinstance(sample, Mapping):
            return None
        inputs = []
        for tensor in self.tensors.values():
            value = sample.get(tensor.target)
            if value is None:
                continue
            if tensor.kind == "ndarray":
                array = np.asarray(value)
                inputs.append(
                    {
                        "name": tensor.name,
                        "datatype": tensor.datatype,
                        "shape": list(array.shape),
                        "data": array.ravel().tolist(),
                    }
                )
            elif tensor.kind == "column":
                records = (
                    [dict(zip(value["columns"], row)) for row in value["data"]] if isinstance(value, Mapping) else value
                )
                cells = [record.get(tensor.column) for record in records]
                inputs.append({"name": tensor.name, "datatype": tensor.datatype, "shape": [len(cells)], "data": cells})
            else:
                element = value if tensor.kind == "binary" else orjson.dumps(value).decode()
                inputs.append({"name": tensor.name, "datatype": BYTES, "shape": [1], "data": [element]})
        return {"inputs": inputs} if inputs else None

    # --- requests --------------------------------------------------------------------------------

    def decode(self, raw: bytes, header_length: int | None, request_id: str) -> tuple[Decoded | Refusal, "Request"]:
        """The request as run() takes it (or the refusal), and what its answer must carry."""
        request = Request()
        try:
            form, head = self._form(raw, header_length, request)
        except ProtocolError as exc:
            return Refusal(
                exc.status, protocol_error(exc.message, request_id, field=exc.field, expected=exc.expected)
            ), request
        except InputError as exc:
            return Refusal(
                400 if exc.status == 422 else exc.status,
                protocol_error(exc.message, request_id, field=exc.field, expected=exc.expected),
            ), request
        return decode_form(form, self.decoder, self.single_input, request_id, head, len(raw)), request

    def _form(self, raw: bytes, header_length: int | None, request: "Request") -> tuple[dict[str, Any], bytes]:
        """The /score body this request stands for ({input: value}), and the JSON header it came in."""
        if header_length is not None:
            if header_length > len(raw):
                raise ProtocolError(
                    f"Inference-Header-Content-Length is {header_length}, but the body has {len(raw)} bytes"
                )
            head, binary = raw[:header_length], memoryview(raw)[header_length:]
        else:
            head, binary = raw, memoryview(b"")
        try:
            body = orjson.loads(head)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"malformed JSON: {exc}") from None
        if type(body) is not dict:
            raise ProtocolError("the request must be a JSON object with 'inputs'", expected="an inference request")
        given_id = body.get("id")
        if given_id is not None:
            if type(given_id) is not str:
                raise ProtocolError("'id' must be a string", field="id")
            request.id = given_id
        request.read_outputs(body.get("outputs"), body.get("parameters"))
        inputs = body.get("inputs")
        if type(inputs) is not list or not inputs:
            raise ProtocolError(
                "'inputs' must be a non-empty array of tensors", field="inputs", expected=self._expected()
            )
        form: dict[str, Any] = {}
        columns: dict[str, dict[str, list[Any]]] = {}
        offset = 0
        seen: set[str] = set()
        for position, item in enumerate(inputs):
            if type(item) is not dict:
                raise ProtocolError(f"inputs[{position}] must be a tensor object", field=f"inputs[{position}]")
            name = item.get("name")
            if type(name) is not str:
                raise ProtocolError(
                    f"inputs[{position}] has no name", field=f"inputs[{position}].name", expected=self._expected()
                )
            tensor = self.tensors.get(name)
            if tensor is None:
                raise ProtocolError(f"unknown input tensor {name!r}", field=name, expected=self._expected())
            if name in seen:
                raise ProtocolError(f"input tensor {name!r} is given twice", field=name)
            seen.add(name)
            datatype, shape = _header(item, name)
            size = _binary_size(item, name)
            chunk = None
            if size is not None:
                if offset + size > len(binary):
                    raise ProtocolError(f"{name}: binary_data_size {size} runs past the end of the body", field=name)
                chunk = binary[offset : offset + size]
                offset += size
            elif "data" not in item:
                raise ProtocolError(f"{name}: no 'data' and no binary_data_size", field=name)
            self._check_datatype(tensor, datatype)
            count = math.prod(shape)
            if tensor.kind == "ndarray":
                check = self.decoder.fields[tensor.target]
                accepts = check.accepts if isinstance(check, NdarrayCheck) else ""
                form[tensor.target] = _array(item.get("data"), chunk, datatype, shape, count, name, accepts, head)
            elif tensor.kind == "column":
                if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
                    raise ProtocolError(
                        f"{name}: a column is a tensor of shape [n] or [n, 1], got {list(shape)}",
                        field=name,
                        expected=f"{tensor.datatype} of shape [-1]",
                    )
                columns.setdefault(tensor.target, {})[tensor.column] = _elements(
                    item.get("data"), chunk, datatype, shape, count, name, text=True
                )
            else:
                if count != 1:
                    raise ProtocolError(
                        f"{name}: expected one element, got shape {list(shape)}",
                        field=name,
                        expected=f"{BYTES} of shape [1]",
                    )
                element = _elements(item.get("data"), chunk, datatype, shape, count, name, text=False)[0]
                if tensor.kind == "binary":
                    form[tensor.target] = (
                        element  # bytes from binary data, base64 text from JSON: BinaryCheck takes both
                    )
                else:
                    try:
                        form[tensor.target] = orjson.loads(element)
                    except orjson.JSONDecodeError as exc:
                        raise ProtocolError(
                            f"{name}: not JSON text ({exc})", field=name, expected=f"{BYTES} holding JSON text"
                        ) from None
        if offset != len(binary):
            raise ProtocolError(f"the body has {len(binary) - offset} bytes of binary data no input claims")
        for tensor in self.tensors.values():
            if tensor.required and tensor.name not in seen:
                raise ProtocolError(
                    f"missing input tensor {tensor.name!r}", field=tensor.name, expected=self._expected()
                )
        for target, given in columns.items():
            form[target] = self._frame(target, given)
        return form, head

    def _frame(self, target: str, given: dict[str, list[Any]]) -> Any:
        check = self.frames[target]
        lengths = {len(values) for values in given.values()}
        if len(lengths) > 1:
            raise ProtocolError(
                "the column tensors have different lengths: " + ", ".join(f"{c}: {len(v)}" for c, v in given.items()),
                field=target,
            )
        rows = lengths.pop()
        names = check.names
        cells = [given.get(c) or [None] * rows for c in names]
        if check.orient == "split":
            return {"columns": names, "data": [list(row) for row in zip(*cells)]}
        if len(given) == len(names):
            return [dict(zip(names, row)) for row in zip(*cells)]
        present = [c for c in names if c in given]
        return [dict(zip(present, row)) for row in zip(*(given[c] for c in present))]

    def _check_datatype(self, tensor: Tensor, datatype: str) -> None:
        if datatype == tensor.datatype:
            return
        wanted = tensor.datatype
        if (
            datatype != BYTES
            and wanted != BYTES
            and DATATYPES[datatype].kind in _ACCEPTS.get(DATATYPES[wanted].kind, "")
        ):
            return  # e.g. FP32 or INT64 for an FP64 input: converted as /score converts JSON numbers
        raise ProtocolError(
            f"{tensor.name}: datatype {datatype}, expected {wanted}",
            field=tensor.name,
            expected=f"{wanted} of shape {list(tensor.shape)}",
        )

    def _expected(self) -> str:
        return "tensors " + ", ".join(f"{t.name} ({t.datatype} {list(t.shape)})" for t in self.tensors.values())

    # --- answers ---------------------------------------------------------------------------------

    def answer(self, body: bytes, request: "Request", model: str, version: str) -> tuple[bytes, int | None]:
        """The inference response for a /score answer, and the JSON header's length when binary data follows."""
        value = orjson.loads(body)
        tensors = output_tensors(value)
        if request.outputs is not None:
            tensors = [t for t in tensors if t[0]["name"] in request.outputs]
        response: dict[str, Any] = {"model_name": model, "model_version": version}
        if request.id is not None:
            response["id"] = request.id
        chunks: list[bytes] = []
        outputs = []
        for described, values in tensors:
            datatype = described["datatype"]
            if request.wants_binary(described["name"]):
                if datatype == BYTES:
                    data = _serialize_bytes(np.asarray(values, dtype=object))
                else:
                    data = np.asarray(values, dtype=DATATYPES[datatype]).tobytes()
                described["parameters"] = {**described.get("parameters", {}), "binary_data_size": len(data)}
                chunks.append(data)
            elif isinstance(values, list):
                described["data"] = values
            else:
                described["data"] = values.ravel().tolist() if datatype != BYTES else [_text(v) for v in values.ravel()]
            outputs.append(described)
        response["outputs"] = outputs
        head = orjson.dumps(response)
        if not chunks:
            return head, None
        return b"".join([head, *chunks]), len(head)


class Request:
    """What an inference request asks of its answer: its id, the outputs it names, binary or JSON."""

    __slots__ = ("id", "outputs", "binary")

    def __init__(self) -> None:
        self.id: str | None = None
        self.outputs: dict[str, bool] | None = None  # name -> as binary data; None: every output
        self.binary = False  # the request's binary_data_output: outputs not named otherwise are binary

    def wants_binary(self, name: str) -> bool:
        return self.outputs.get(name, self.binary) if self.outputs is not None else self.binary

    def read_outputs(self, outputs: Any, parameters: Any) -> None:
        self.binary = bool(parameters.get("binary_data_output")) if type(parameters) is dict else False
        if outputs is None:
            return
        if type(outputs) is not list:
            raise ProtocolError("'outputs' must be an array of {name}", field="outputs")
        wanted: dict[str, bool] = {}
        for position, item in enumerate(outputs):
            if type(item) is not dict or type(item.get("name")) is not str:
                raise ProtocolError(f"outputs[{position}] must be an object with a name", field=f"outputs[{position}]")
            params = item.get("parameters")
            wanted[item["name"]] = bool(params.get("binary_data", self.binary)) if type(params) is dict else self.binary
        self.outputs = wanted


def _header(item: dict[str, Any], name: str) -> tuple[str, tuple[int, ...]]:
    datatype = item.get("datatype")
    if type(datatype) is not str or (datatype not in DATATYPES and datatype != BYTES):
        raise ProtocolError(
            f"{name}: unknown datatype {datatype!r}", field=name, expected="one of " + ", ".join([*DATATYPES, BYTES])
        )
    shape = item.get("shape")
    if type(shape) is not list or not all(type(d) is int and d >= 0 for d in shape):
        raise ProtocolError(f"{name}: 'shape' must be an array of non-negative integers, got {shape!r}", field=name)
    return datatype, tuple(shape)


def _binary_size(item: dict[str, Any], name: str) -> int | None:
    parameters = item.get("parameters")
    if type(parameters) is not dict or "binary_data_size" not in parameters:
        return None
    size = parameters["binary_data_size"]
    if type(size) is not int or size < 0:
        raise ProtocolError(f"{name}: binary_data_size must be a non-negative integer", field=name)
    return size


def _array(
    data: Any,
    chunk: memoryview | None,
    datatype: str,
    shape: tuple[int, ...],
    count: int,
    name: str,
    accepts: str,
    head: bytes,
) -> Any:
    """An ndarray input for NdarrayCheck: a NumPy array from binary data, or from flat JSON numbers the
    input accepts; anything else as nested lists, so the refusal names the element as /score's does."""
    if chunk is not None:
        dtype = DATATYPES[datatype]
        if len(chunk) != count * dtype.itemsize:
            raise ProtocolError(
                f"{name}: {len(chunk)} bytes of binary data for shape {list(shape)} of {datatype} ({count * dtype.itemsize} expected)",
                field=name,
            )
        return np.frombuffer(chunk, dtype=dtype).reshape(shape).copy()  # writable, and not a view of the body
    if type(data) is not list:
        raise ProtocolError(f"{name}: 'data' must be an array", field=name)
    if data and type(data[0]) is list:  # nested: must already have the declared shape
        try:
            given: tuple[int, ...] = np.shape(data)
        except ValueError:  # ragged
            given = ()
        if given != shape:
            raise ProtocolError(f"{name}: nested data that is not of shape {list(shape)}", field=name)
        return data
    if len(data) != count:
        raise ProtocolError(f"{name}: {len(data)} elements for shape {list(shape)} ({count} expected)", field=name)
    # NumPy turns JSON booleans among numbers into 1 and 0: with any in the body, the nested path finds them
    if data and not (b"true" in head or b"false" in head):
        try:
            array = np.array(data)
        except (ValueError, TypeError):
            array = None
        if array is not None and array.ndim == 1 and array.dtype.kind in accepts:
            return array.reshape(shape)
    return _nest(data, shape)


def _nest(flat: list[Any], shape: tuple[int, ...]) -> list[Any]:
    """A row-major flat list as nested lists of `shape`."""
    if len(shape) <= 1:
        return flat
    nested: list[Any] = flat
    for size in reversed(shape[1:]):
        nested = [nested[i : i + size] for i in range(0, len(nested), size)] if size else []
    return nested


def _elements(
    data: Any, chunk: memoryview | None, datatype: str, shape: tuple[int, ...], count: int, name: str, *, text: bool
) -> list[Any]:
    """The elements of a column, binary or JSON tensor, flat; strings of a BYTES column as text."""
    if chunk is not None:
        if datatype == BYTES:
            items = _deserialize_bytes(chunk, count, name)
            if text:
                try:
                    return [item.decode("utf-8") for item in items]
                except UnicodeDecodeError:
                    raise ProtocolError(f"{name}: an element is not UTF-8 text", field=name) from None
            return list(items)
        dtype = DATATYPES[datatype]
        if len(chunk) != count * dtype.itemsize:
            raise ProtocolError(
                f"{name}: {len(chunk)} bytes of binary data for shape {list(shape)} of {datatype}", field=name
            )
        values: list[Any] = np.frombuffer(chunk, dtype=dtype).tolist()
        return values
    if type(data) is not list:
        raise ProtocolError(f"{name}: 'data' must be an array", field=name)
    flat = data
    while flat and type(flat[0]) is list:
        flat = [value for row in flat for value in row]
    if len(flat) != count:
        raise ProtocolError(f"{name}: {len(flat)} elements for shape {list(shape)} ({count} expected)", field=name)
    if datatype == BYTES and not all(type(v) is str for v in flat):
        raise ProtocolError(f"{name}: the elements of a BYTES tensor in JSON are strings", field=name)
    return flat


def _deserialize_bytes(chunk: memoryview, count: int, name: str) -> list[bytes]:
    """Binary BYTES elements: each a 4-byte little-endian length and that many bytes."""
    items, at, end = [], 0, len(chunk)
    while at < end:
        if at + 4 > end:
            raise ProtocolError(f"{name}: truncated BYTES element", field=name)
        (size,) = struct.unpack_from("<I", chunk, at)
        at += 4
        if at + size > end:
            raise ProtocolError(f"{name}: truncated BYTES element", field=name)
        items.append(bytes(chunk[at : at + size]))
        at += size
    if len(items) != count:
        raise ProtocolError(f"{name}: {len(items)} BYTES elements for {count} in its shape", field=name)
    return items


def _serialize_bytes(array: np.ndarray) -> bytes:
    parts = []
    for value in array.ravel():
        data = value if isinstance(value, bytes) else _text(value).encode("utf-8")
        parts.append(struct.pack("<I", len(data)))
        parts.append(data)
    return b"".join(parts)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def decode_form(
    form: dict[str, Any], decoder: RequestDecoder, single_input: str | None, request_id: str, head: bytes, size: int
) -> Decoded | Refusal:
    """A protocol request's inputs checked by the /score decoder: the same values, the same refusals
    (as 400s in the protocol's shape); `form` is kept to capture the request as /score would."""
    try:
        inputs = decoder.decode(form, raw=head)
    except InputError as exc:
        # /score's status (422) for metrics and capture: the answer turns it into the protocols' 400
        body = protocol_error(exc.message, request_id, field=exc.field, expected=exc.expected)
        return Refusal(exc.status, body, form=form)
    held = held_bytes(inputs.values(), size)
    return Decoded(inputs[single_input] if single_input is not None and len(inputs) == 1 else inputs, held, form)


def protocol_error(message: str, request_id: str, **extra: Any) -> bytes:
    """The protocols' error body: `error` is the message (what Triton's and KServe's clients show)."""
    return orjson.dumps({"error": message, "request_id": request_id, **{k: v for k, v in extra.items() if v}})


def reshape_error(body: bytes, status: int) -> tuple[int, bytes]:
    """A /score error answer in the protocols' shape; a schema refusal (422) is their 400."""
    try:
        error = orjson.loads(body)
    except orjson.JSONDecodeError:
        return status, orjson.dumps({"error": body.decode("utf-8", "replace")})
    if type(error) is not dict or "message" not in error:  # already in the protocols' shape
        return (400 if status == 422 else status), body
    message = error.pop("message")
    code = error.pop("error", "")
    return (400 if status == 422 else status), orjson.dumps({"error": message, "code": code, **error})


# --- outputs -------------------------------------------------------------------------------------


def output_tensors(value: Any) -> list[tuple[dict[str, Any], np.ndarray | list[Any]]]:
    """The /score answer as output tensors: an object's members one tensor each, anything else `output-0`."""
    if type(value) is dict:
        return [_tensor(str(name), member) for name, member in value.items()]
    return [_tensor("output-0", value)]


def _tensor(name: str, value: Any) -> tuple[dict[str, Any], np.ndarray | list[Any]]:
    """One output tensor and its values: a flat list of numbers as it is (the usual answer, no NumPy
    round trip), anything else through NumPy."""
    if type(value) is not list:
        value = [value]
    kinds = set(map(type, value))
    if kinds and kinds <= _NUMBERS:
        return {"name": name, "datatype": "FP64" if float in kinds else "INT64", "shape": [len(value)]}, value
    array = _regular(value)
    if array is None:  # ragged, objects or null: one BYTES element of JSON text
        array = np.array([orjson.dumps(value[0] if len(value) == 1 else value)], dtype=object)
        return {"name": name, "datatype": BYTES, "shape": [1], "parameters": {"content_type": JSON_CONTENT}}, array
    if array.dtype.kind == "U":
        array = array.astype(object)
        return {"name": name, "datatype": BYTES, "shape": list(array.shape)}, array
    return {"name": name, "datatype": _OF_DTYPE[array.dtype.name], "shape": list(array.shape)}, array


_NUMBERS = frozenset((int, float))


def _regular(value: list[Any]) -> np.ndarray | None:
    """`value` as a NumPy array of numbers, booleans or strings, or None when it is not one."""
    try:
        array = np.array(value)
    except (ValueError, TypeError):
        return None
    if array.dtype.kind not in "biufU" or array.size == 0 and array.ndim != 1:
        return None
    if array.dtype.kind in "iu" and array.dtype != np.int64:
        array = array.astype(np.int64)
    return array


def _output_metadata(output_schema: Any) -> tuple[dict[str, Any], ...]:
    """Output tensors as far as output_schema.json tells: an object's properties, one tensor each."""
    if not isinstance(output_schema, Mapping):
        return ()
    properties = output_schema.get("properties")
    if output_schema.get("type") == "object" and isinstance(properties, Mapping):
        return tuple(_described(str(name), sub) for name, sub in properties.items())
    return (_described("output-0", output_schema),)


def _described(name: str, schema: Any) -> dict[str, Any]:
    shape: list[int] = []
    leaf = schema
    while isinstance(leaf, Mapping) and leaf.get("type") == "array" and isinstance(leaf.get("items"), Mapping):
        shape.append(-1)
        leaf = leaf["items"]
    kind = leaf.get("type") if isinstance(leaf, Mapping) else None
    datatype = {"integer": "INT64", "number": "FP64", "boolean": "BOOL"}.get(
        kind if isinstance(kind, str) else "", BYTES
    )
    described: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape or [1]}
    if datatype == BYTES and kind != "string":
        described = {"name": name, "datatype": BYTES, "shape": [1], "parameters": {"content_type": JSON_CONTENT}}
    return described

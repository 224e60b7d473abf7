"""KServe's V1 protocol (TensorFlow Serving's REST API): `{"instances": [...]}` or `{"inputs": ...}` in,
`{"predictions": [...]}` out, mapped onto the model's schema.json inputs. A request becomes the /score
body it stands for, checked by the same decoder; knows nothing of routes, keys or queues.

Mapping: with one ndarray input, instances are its rows; with one DataFrame input, instances are
records (objects) or rows in column order; any other model takes one instance, an object of its named
inputs (or the value of its one input). A binary value may be `{"b64": "..."}` as TensorFlow Serving
writes it, or the base64 string itself.
"""

from __future__ import annotations

from typing import Any

import orjson

from gitops_ml.serving.bodies import Decoded, Refusal
from gitops_ml.serving.decoding import BinaryCheck, DataFrameCheck, NdarrayCheck, RequestDecoder
from gitops_ml.serving.oip import ProtocolError, decode_form, protocol_error


class V1Layout:
    """How instances map onto the inputs of one schema."""

    def __init__(self, decoder: RequestDecoder) -> None:
        self.decoder = decoder
        self.single_input = next(iter(decoder.fields)) if len(decoder.fields) == 1 else None
        self.binary = frozenset(name for name, check in decoder.fields.items() if isinstance(check, BinaryCheck))

    def decode(self, raw: bytes, request_id: str) -> Decoded | Refusal:
        try:
            form = self._form(raw)
        except ProtocolError as exc:
            return Refusal(exc.status, protocol_error(exc.message, request_id, field=exc.field, expected=exc.expected))
        return decode_form(form, self.decoder, self.single_input, request_id, raw, len(raw))

    def _form(self, raw: bytes) -> dict[str, Any]:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"malformed JSON: {exc}") from None
        if type(body) is not dict or ("instances" in body) == ("inputs" in body):
            raise ProtocolError(
                "the request must be a JSON object with 'instances' or 'inputs' (one of them)",
                expected=self._expected(),
            )
        if "inputs" in body and type(body["inputs"]) is dict:  # columnar: the named inputs themselves
            return {name: self._unwrap(name, value) for name, value in body["inputs"].items()}
        instances = body.get("instances", body.get("inputs"))
        if type(instances) is not list or not instances:
            raise ProtocolError("'instances' must be a non-empty array", field="instances", expected=self._expected())
        name = self.single_input
        check = self.decoder.fields[name] if name is not None else None
        if isinstance(check, NdarrayCheck):
            return {name: instances} if name is not None else {}
        if isinstance(check, DataFrameCheck) and name is not None:
            return {name: self._table(check, instances)}
        if len(instances) != 1:
            raise ProtocolError(
                f"this model scores one instance per request, got {len(instances)}",
                field="instances",
                expected=self._expected(),
            )
        instance = instances[0]
        if name is not None and not (type(instance) is dict and set(instance) == {name}):
            return {name: self._unwrap(name, instance)}
        if type(instance) is not dict:
            raise ProtocolError(
                "instances[0] must be an object of named inputs", field="instances[0]", expected=self._expected()
            )
        return {key: self._unwrap(key, value) for key, value in instance.items()}

    def _table(self, check: DataFrameCheck, instances: list[Any]) -> Any:
        if all(type(row) is dict for row in instances):
            records = instances
        elif all(type(row) is list for row in instances):
            width = len(check.names)
            for i, row in enumerate(instances):
                if len(row) != width:
                    raise ProtocolError(
                        f"instances[{i}]: expected a row of {width} values ({', '.join(check.names)})",
                        field=f"instances[{i}]",
                    )
            records = [dict(zip(check.names, row)) for row in instances]
        else:
            raise ProtocolError(
                "instances must all be records (objects) or all be rows (arrays)",
                field="instances",
                expected=check.expected,
            )
        if check.orient == "split":
            return {"columns": check.names, "data": [[record.get(c) for c in check.names] for record in records]}
        return records

    def _unwrap(self, name: str, value: Any) -> Any:
        if name in self.binary and type(value) is dict and set(value) == {"b64"}:
            return value["b64"]
        return value

    def example(self, sample: Any) -> dict[str, Any] | None:
        """The V1 request that stands for the model's sample (the documents' example), or None."""
        if not isinstance(sample, dict) or not sample:
            return None
        name = self.single_input
        check = self.decoder.fields[name] if name is not None else None
        if name is not None and isinstance(check, NdarrayCheck) and isinstance(sample.get(name), list):
            return {"instances": sample[name]}
        if name is not None and isinstance(check, DataFrameCheck) and name in sample:
            value = sample[name]
            return {
                "instances": [dict(zip(value["columns"], row)) for row in value["data"]]
                if isinstance(value, dict)
                else value
            }
        return {"instances": [{key: {"b64": value} if key in self.binary else value for key, value in sample.items()}]}

    def _expected(self) -> str:
        name = self.single_input
        if name is not None:
            check = self.decoder.fields[name]
            if isinstance(check, (NdarrayCheck, DataFrameCheck)):
                return f"instances: rows of {name} ({getattr(check, 'expected', '')})"
        return "instances: one object with " + ", ".join(repr(n) for n in self.decoder.fields)


def predictions(body: bytes) -> bytes:
    """The V1 answer for a /score answer: its `predictions` member, its list, or the one result."""
    value = orjson.loads(body)
    if type(value) is dict and "predictions" in value:
        value = value["predictions"]
    elif type(value) is not list:
        value = [value]
    return orjson.dumps({"predictions": value})

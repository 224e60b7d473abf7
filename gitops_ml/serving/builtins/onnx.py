"""Built-in `onnx`: an ONNX graph run by onnxruntime on the CPU. The graph names its inputs, their
element types and shapes: one input takes the request's value, several take the request's named
inputs. The first output answers as predictions; with `probabilities: true` the second output
(a tensor of probabilities, or skl2onnx's list of {class: probability} maps) answers as
probabilities with the classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml.errors import LoadError, Location
from gitops_ml.serving.builtins._common import BuiltinScorer, Outputs, as_table
from gitops_ml.serving.decoding import InputError
from gitops_ml.serving.tensors import TensorInput

# ONNX tensor element types as onnxruntime names them -> NumPy dtypes
ELEMENT_TYPES = {
    "tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
    "tensor(int8)": "int8", "tensor(int16)": "int16", "tensor(int32)": "int32", "tensor(int64)": "int64",
    "tensor(uint8)": "uint8", "tensor(uint16)": "uint16", "tensor(uint32)": "uint32", "tensor(uint64)": "uint64",
    "tensor(bool)": "bool", "tensor(string)": "str",
}


def open_session(path: Path) -> Any:
    import onnxruntime as ort  # noqa: PLC0415 - in the image for this built-in only

    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors for a bad graph
        raise LoadError(f"onnxruntime cannot load the graph: {str(exc).splitlines()[0][:300]}", location=Location(str(path))) from exc


def _dimension(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def describe(path: Path) -> list[TensorInput]:
    """The graph's inputs: names, NumPy dtypes and shapes (None for a free dimension)."""
    session = open_session(path)
    out = []
    for node in session.get_inputs():
        dtype = ELEMENT_TYPES.get(node.type)
        if dtype is None:
            raise LoadError(f"input {node.name!r} is a {node.type}, which requests cannot carry", location=Location(str(path)),
                            hint="write a score.py for this graph")
        shape = tuple(_dimension(d) for d in (node.shape or [None]))
        out.append(TensorInput(node.name, dtype, shape))
    return out


class Scorer(BuiltinScorer):
    builtin = "onnx"

    def load(self) -> None:
        self.session = open_session(self.artifact)
        self.inputs = describe(self.artifact)
        outputs = self.session.get_outputs()
        self.output_names = [o.name for o in outputs]
        if self.options.probabilities and len(outputs) < 2:
            raise LoadError(f"scoring.probabilities is set, but the graph has one output ({outputs[0].name})", location=Location(str(self.artifact)),
                            hint="remove `probabilities: true`, or export the classifier with its probability output")
        self.wanted = self.output_names[:2] if self.options.probabilities else self.output_names[:1]
        # a free first dimension lets a batch of requests run as one call
        self.joinable = all(i.shape and i.shape[0] is None for i in self.inputs)

    def features(self, data: Any) -> Any:
        if len(self.inputs) == 1:
            spec = self.inputs[0]
            value = data.get(spec.name, data) if isinstance(data, dict) and len(data) > 1 else data
            return {spec.name: self._tensor(spec, value)}
        if isinstance(data, pd.DataFrame):  # one graph input per column (skl2onnx's per-column inputs)
            data = {name: data[[name]] for name in data.columns}
        if not isinstance(data, dict):
            raise InputError(f"the graph takes {len(self.inputs)} inputs: " + ", ".join(i.name for i in self.inputs),
                             expected="an object with " + ", ".join(repr(i.name) for i in self.inputs))
        feeds = {}
        for spec in self.inputs:
            if spec.name not in data:
                raise InputError(f"missing input {spec.name!r}", field=spec.name, expected=f"{spec.dtype} tensor")
            feeds[spec.name] = self._tensor(spec, data[spec.name])
        return feeds

    def _tensor(self, spec: TensorInput, value: Any) -> np.ndarray:
        if isinstance(value, pd.DataFrame):
            value = value.to_numpy()
        elif not isinstance(value, np.ndarray):
            value = as_table(value) if spec.dtype != "str" else np.asarray(value, dtype=object)
            if isinstance(value, pd.DataFrame):
                value = value.to_numpy()
        dtype = object if spec.dtype == "str" else np.dtype(spec.dtype)
        try:
            array = np.asarray(value).astype(dtype, copy=False)
        except (ValueError, TypeError) as exc:
            raise InputError(f"{spec.name}: not {spec.dtype} values ({exc})", field=spec.name, expected=f"{spec.dtype} tensor") from None
        if array.ndim != len(spec.shape) or any(want is not None and got != want for got, want in zip(array.shape, spec.shape)):
            shape = "(" + ", ".join("n" if d is None else str(d) for d in spec.shape) + ")"
            raise InputError(f"{spec.name}: expected shape {shape}, got {array.shape}", field=spec.name, expected=f"{spec.dtype} tensor of shape {shape}")
        return array

    def run_batch(self, items: Any) -> list[dict[str, Any]]:
        if not self.joinable:
            return [self.call(self.features(item)).answer() for item in items]
        return super().run_batch(items)

    def predict(self, features: Any) -> Outputs:
        results = self.session.run(self.wanted, features)
        predictions = results[0]
        if not self.options.probabilities:
            return Outputs(predictions)
        probabilities, classes = _probabilities(results[1])
        return Outputs(predictions, probabilities, classes)


def _probabilities(value: Any) -> tuple[Any, list[Any] | None]:
    """skl2onnx's ZipMap output (a list of {class: probability}) as a matrix and its classes."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        classes = list(value[0])
        return np.array([[row[c] for c in classes] for row in value]), classes
    return value, None

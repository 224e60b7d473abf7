"""A tensor a model takes, as the ONNX built-in reads it from the graph (builtins.onnx) and the learnt
request schemas describe it (model_schema). Pure data: no NumPy at import.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TensorInput:
    """One tensor the model takes: its name, NumPy dtype ('str' for strings) and shape (None: free)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...]

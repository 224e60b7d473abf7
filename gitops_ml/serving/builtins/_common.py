"""What every built-in scorer shares: the documented answer ({"predictions": [...]} with optional
"probabilities" and "classes"), turning a decoded request into the model's input, batching (one
model call for a whole batch, split back per request), and located load errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from gitops_ml.errors import LoadError, Location
from gitops_ml.serving.builtins.catalog import BUILTINS, format_problem, sniff_format
from gitops_ml.serving.decoding import InputError


@dataclass(frozen=True)
class Options:
    """How the server calls a built-in: the manifest's scoring options, the request's input names
    (from schema.json) and whether `run` receives batches."""

    probabilities: bool = False
    input_names: tuple[str, ...] = ()
    batch: bool = False

    @classmethod
    def parse(cls, text: str, input_names: Sequence[str] = (), batch: bool = False) -> "Options":
        raw = json.loads(text) if text.strip() else {}
        if not isinstance(raw, dict):
            raise LoadError(f"built-in options must be a JSON object, got {text!r}")
        return cls(probabilities=bool(raw.get("probabilities", False)), input_names=tuple(input_names), batch=batch)


@dataclass
class Outputs:
    """One model call's results, row-aligned: predictions, and probabilities with their classes."""

    predictions: Any
    probabilities: Any = None
    classes: list[Any] | None = None

    def answer(self) -> dict[str, Any]:
        out: dict[str, Any] = {"predictions": _plain(self.predictions)}
        if self.probabilities is not None:
            out["probabilities"] = _plain(self.probabilities)
            out["classes"] = self.classes if self.classes is not None else list(range(np.shape(self.probabilities)[-1]))
        return out

    def split(self, sizes: Sequence[int]) -> list[dict[str, Any]]:
        answers, start = [], 0
        for size in sizes:
            part = Outputs(_rows(self.predictions, start, size), None if self.probabilities is None else _rows(self.probabilities, start, size), self.classes)
            answers.append(part.answer())
            start += size
        return answers


def _length(value: Any) -> int:
    try:
        return len(value)
    except TypeError:
        return -1


def _rows(value: Any, start: int, size: int) -> Any:
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return value.iloc[start:start + size]
    return value[start:start + size]


def _plain(value: Any) -> Any:
    """JSON-ready values: a DataFrame answers as records (as MLflow's scoring server does)."""
    if isinstance(value, pd.DataFrame):
        return value.to_dict(orient="records")
    if isinstance(value, (pd.Series, pd.Index)):
        return value.tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def plain_classes(classes: Any) -> list[Any] | None:
    return None if classes is None else np.asarray(classes).tolist()


class BuiltinScorer:
    """The score.py contract for a built-in: init() loads the artifact, run(data) scores one request
    (or, with batching, a list of them with one model call)."""

    builtin = ""

    def __init__(self, artifact: Path, options: Options) -> None:
        self.artifact = artifact
        self.options = options

    # --- to implement --------------------------------------------------------------------------

    def load(self) -> None:
        raise NotImplementedError

    def predict(self, features: Any) -> Outputs:
        raise NotImplementedError

    def features(self, data: Any) -> Any:
        """One request's decoded input as the model takes it."""
        return as_table(data)

    # --- the contract --------------------------------------------------------------------------

    def init(self) -> None:
        check_artifact(self.builtin, self.artifact)
        self.load()

    def run(self, data: Any) -> Any:
        if self.options.batch:
            return self.run_batch(data)
        return self.call(self.features(data)).answer()

    def run_batch(self, items: Sequence[Any]) -> list[dict[str, Any]]:
        features = [self.features(item) for item in items]
        joined = join(features)
        if joined is None:
            return [self.call(f).answer() for f in features]
        return self.split_or_each(self.call(joined), features, [rows_of(f) for f in features])

    def split_or_each(self, outputs: Outputs, features: Sequence[Any], sizes: Sequence[int]) -> list[dict[str, Any]]:
        """The joined call's answer split per request, or each request scored alone when the model
        did not answer one result per row (a model that summarises its input)."""
        if _length(outputs.predictions) != sum(sizes):
            return [self.call(f).answer() for f in features]
        return outputs.split(sizes)

    def call(self, features: Any) -> Outputs:
        try:
            return self.predict(features)
        except (ValueError, KeyError, TypeError) as exc:
            # the libraries say ValueError/KeyError for input they cannot take (a wrong width, an
            # unknown column, a string among numbers): the caller's input, so a 422 naming it
            raise InputError(f"the model refused the input: {exc}", expected=self.expected()) from exc

    def expected(self) -> str:
        return "rows the model was trained on"


def check_artifact(builtin: str, path: Path) -> None:
    """LoadError, located at the artifact, when it is missing or in a format another built-in loads."""
    where = Location(str(path))
    if not path.exists():
        raise LoadError(f"the artifact {path.name} is not in the model directory", location=where,
                        hint="model.yaml's artifact.path names it; `gitops-ml build` puts it there, `gitops-ml serve` needs it beside manifest.yaml")
    if path.is_dir():
        return
    with open(path, "rb") as fh:
        head = fh.read(64)
    names: list[str] = []
    if head.startswith(b"PK\x03\x04"):
        import zipfile  # noqa: PLC0415

        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except zipfile.BadZipFile as exc:
            raise LoadError(f"the artifact is a damaged zip: {exc}", location=where) from exc
    problem = format_problem(BUILTINS[builtin], sniff_format(head, names), path.name)
    if problem is not None:
        raise LoadError(problem[0], location=where, hint=problem[1])


def as_table(data: Any) -> Any:
    """A request's value as rows: an array or a DataFrame (from the schema's decoding), a list of
    records, nested lists of numbers, or one named input holding one of those."""
    if isinstance(data, (np.ndarray, pd.DataFrame)):
        return data
    if isinstance(data, dict) and len(data) == 1:
        return as_table(next(iter(data.values())))
    if isinstance(data, list) and data:
        if all(isinstance(row, dict) for row in data):
            return pd.DataFrame.from_records(data)
        try:
            array = np.asarray(data)
        except ValueError:
            raise InputError("rows have different lengths", expected="an array of rows") from None
        if array.dtype.kind in "biuf" and array.ndim >= 1:
            return array if array.ndim > 1 else array.reshape(1, -1)
        raise InputError("expected rows of numbers, or records (objects of column values)", expected="an array of rows")
    raise InputError("expected rows: an array of rows or of records (a request schema decodes them: `gitops-ml schema generate`)",
                     expected="an array of rows")


def rows_of(features: Any) -> int:
    if isinstance(features, dict):
        return rows_of(next(iter(features.values())))
    return len(features)


def join(features: Sequence[Any]) -> Any:
    """The requests' inputs as one input (rows after rows), or None when they cannot be joined."""
    first = features[0]
    try:
        if all(isinstance(f, pd.DataFrame) for f in features):
            if any(list(f.columns) != list(first.columns) for f in features):
                return None
            return pd.concat(features, ignore_index=True)
        if all(isinstance(f, np.ndarray) for f in features):
            if any(f.shape[1:] != first.shape[1:] or f.dtype != first.dtype for f in features):
                return None
            return np.concatenate(features)
        if all(isinstance(f, dict) for f in features):
            if any(f.keys() != first.keys() for f in features):
                return None
            parts = {name: join([f[name] for f in features]) for name in first}
            return None if any(p is None for p in parts.values()) else parts
    except (ValueError, TypeError):
        return None
    return None


def frame_for(array: np.ndarray, names: Sequence[str]) -> Any:
    """Rows of a model trained on named columns: a DataFrame with those names when the widths agree."""
    if names and array.ndim == 2 and array.shape[1] == len(names):
        return pd.DataFrame(array, columns=list(names))
    return array


def select_columns(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """The model's columns in its order; InputError naming a missing one."""
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise InputError(f"missing column {missing[0]!r}", field=missing[0], expected="columns " + ", ".join(names))
    return frame if list(frame.columns) == list(names) else frame[list(names)]

"""Reference profiles: a small summary of one version's training inputs and predictions.

Per feature: counts, and for numbers percentiles, moments and decile bins; for categories their
frequencies. Written as JSON into the model directory (`reference:` in model.yaml), so it is part of
the version and `monitor` compares production with it. Pure: values in, dataclasses and JSON out.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from gitops_ml.errors import LoadError
from gitops_ml.monitor.features import FeaturePath
from gitops_ml.repo import catalog
from gitops_ml.types import API_VERSION

KIND = "Profile"
SCHEMA_FILE = "profile.schema.json"
NUMERIC = "numeric"
CATEGORICAL = "categorical"
MAX_CATEGORIES = 50  # beyond these (by frequency) categories are counted together as `other`
MAX_INTEGER_CATEGORIES = 20  # integers with at most this many distinct values are classes, not quantities
PERCENTILES = np.linspace(0.0, 100.0, 101)
BINS = 10
DIGITS = 6  # significant digits kept: the profile is committed and read by people too
OTHER_LABEL = "(other)"
_NUMBER_LIST = re.compile(r"\[\s*(-?[0-9][-0-9.eE+]*(?:,\s*-?[0-9][-0-9.eE+]*)*)\s*\]")


@dataclass(frozen=True)
class NumericSummary:
    minimum: float
    maximum: float
    mean: float
    std: float
    quantiles: tuple[float, ...]  # the 0th..100th percentiles
    edges: tuple[float, ...]  # bin edges (deciles, duplicates removed); the outer bins are open-ended
    counts: tuple[int, ...]  # reference values per bin, len(edges) - 1


@dataclass(frozen=True)
class CategoricalSummary:
    categories: Mapping[str, int]  # the most frequent categories -> count
    other: int  # values of every other category


@dataclass(frozen=True)
class FeatureProfile:
    """One feature (or prediction): where it is read from, and its reference distribution."""

    name: str
    path: FeaturePath
    kind: str  # numeric | categorical
    count: int  # values present
    missing: int  # null or not a value of the kind
    numeric: NumericSummary | None = None
    categorical: CategoricalSummary | None = None


@dataclass(frozen=True)
class Profile:
    model: str
    rows: int
    features: tuple[FeatureProfile, ...]
    predictions: tuple[FeatureProfile, ...]
    source: str = ""  # the data's file name, for people
    notes: tuple[str, ...] = field(default=(), compare=False)  # what profiling could not use (not written)

    def to_json(self) -> str:
        doc = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "model": self.model,
            "source": self.source,
            "rows": self.rows,
            "features": [_feature_doc(f) for f in self.features],
            "predictions": [_feature_doc(f) for f in self.predictions],
        }
        text = json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False)
        # lists of numbers on one line each: the file stays short enough to read and to diff
        return _NUMBER_LIST.sub(lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text) + "\n"


# --- building ----------------------------------------------------------------------------------


def category_key(value: Any) -> str | None:
    """The category a JSON or table value falls in: integral floats read as integers (1.0 is 1),
    booleans as true/false; None for a missing value."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def guess_kind(column: pd.Series) -> str:
    """Numbers are numeric unless they are few distinct integers (class labels); anything else is categorical."""
    if column.dtype.kind not in "iuf":
        return CATEGORICAL
    present = column.dropna()
    if present.empty:
        return CATEGORICAL
    values = present.to_numpy(dtype=np.float64)
    if np.all(np.mod(values, 1) == 0) and np.unique(values).size <= MAX_INTEGER_CATEGORIES:
        return CATEGORICAL
    return NUMERIC


def profile_column(name: str, path: FeaturePath, column: pd.Series, kind: str | None = None) -> FeatureProfile:
    """The profile of one column of training data (or predictions)."""
    kind = kind or guess_kind(column)
    if kind == NUMERIC:
        numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
        finite = numbers[np.isfinite(numbers)]
        return profile_numbers(name, path, finite, int(numbers.size - finite.size))
    keys = column.map(category_key)
    present = keys.dropna()
    if present.empty:
        raise ValueError(f"{name}: no values to profile")
    return profile_categories(name, path, present.value_counts().to_dict(), int(keys.size - present.size))


def profile_numbers(name: str, path: FeaturePath, numbers: np.ndarray, missing: int) -> FeatureProfile:
    if numbers.size == 0:
        raise ValueError(f"{name}: no numbers to profile")
    quantiles = np.percentile(numbers, PERCENTILES)
    edges = bin_edges(quantiles)
    summary = NumericSummary(
        minimum=_round(numbers.min()), maximum=_round(numbers.max()), mean=_round(numbers.mean()), std=_round(numbers.std()),
        quantiles=tuple(_round(q) for q in quantiles), edges=edges, counts=tuple(int(c) for c in bin_counts(numbers, edges)),
    )
    return FeatureProfile(name, path, NUMERIC, int(numbers.size), missing, numeric=summary)


def profile_categories(name: str, path: FeaturePath, counted: Mapping[str, int], missing: int) -> FeatureProfile:
    top = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CATEGORIES]
    kept = {str(k): int(v) for k, v in sorted(top)}
    total = int(sum(counted.values()))
    return FeatureProfile(name, path, CATEGORICAL, total, missing, categorical=CategoricalSummary(kept, total - sum(kept.values())))


def bin_edges(quantiles: np.ndarray | Sequence[float]) -> tuple[float, ...]:
    """Decile edges from the percentiles, without duplicates (a feature with few values has fewer bins)."""
    deciles = [_round(q) for q in np.asarray(quantiles)[:: 100 // BINS]]
    edges: list[float] = []
    for edge in deciles:
        if not edges or edge > edges[-1]:
            edges.append(edge)
    if len(edges) == 1:
        edges.append(edges[0])  # a constant: one bin
    return tuple(edges)


def bin_counts(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Values per bin; bins are [e_i, e_i+1) with the first and last open-ended, so production values
    outside the reference range land in the outer bins."""
    inner = np.asarray(edges[1:-1], dtype=np.float64)
    index = np.searchsorted(inner, values, side="right")
    return np.bincount(index, minlength=len(edges) - 1)


def _round(value: float) -> float:
    value = float(value)
    if value == 0 or not math.isfinite(value):
        return value
    return float(f"{value:.{DIGITS}g}")


# --- the file ----------------------------------------------------------------------------------


def _feature_doc(f: FeatureProfile) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": f.name, "path": str(f.path), "type": f.kind, "count": f.count, "missing": f.missing}
    if f.numeric is not None:
        n = f.numeric
        doc.update(min=n.minimum, max=n.maximum, mean=n.mean, std=n.std, quantiles=list(n.quantiles), bins={"edges": list(n.edges), "counts": list(n.counts)})
    if f.categorical is not None:
        doc.update(categories=dict(f.categorical.categories), other=f.categorical.other)
    return doc


def load_profile(path: str, raw: bytes) -> Profile:
    """Parse and check a profile file; LoadError located at the offending field."""
    from jsonschema import Draft202012Validator  # noqa: PLC0415

    from gitops_ml.repo.loading import parse_json  # noqa: PLC0415

    doc = parse_json(path, raw)
    schema = json.loads((catalog.data_dir("schemas") / SCHEMA_FILE).read_text(encoding="utf-8"))
    # the deepest error first: a wrong `type` also fails the if/then it selects, one level up
    errors = sorted(Draft202012Validator(schema).iter_errors(doc.data), key=lambda e: (-len(e.absolute_path), [str(p) for p in e.absolute_path]))
    if errors:
        error = errors[0]
        where = ".".join(str(p) for p in error.absolute_path) or "the document"
        raise LoadError(
            f"not a reference profile: {where}: {error.message}", location=doc.locate(list(error.absolute_path)),
            hint="write it again with `gitops-ml profile DATA --model MODEL`",
        )
    data = doc.data

    def feature(i: int, item: Mapping[str, Any], section: str) -> FeatureProfile:
        try:
            fpath = FeaturePath.parse(item["path"])
        except ValueError as exc:
            raise LoadError(str(exc), location=doc.locate([section, i, "path"])) from exc
        numeric = categorical = None
        if item["type"] == NUMERIC:
            bins = item["bins"]
            if len(bins["counts"]) != len(bins["edges"]) - 1 or len(item["quantiles"]) != len(PERCENTILES):
                raise LoadError(f"{section}[{i}] ({item['name']}): bins or quantiles do not fit together", location=doc.locate([section, i, "bins"]))
            numeric = NumericSummary(item["min"], item["max"], item["mean"], item["std"], tuple(item["quantiles"]), tuple(bins["edges"]), tuple(bins["counts"]))
        else:
            categorical = CategoricalSummary(dict(item["categories"]), item["other"])
        return FeatureProfile(item["name"], fpath, item["type"], item["count"], item["missing"], numeric, categorical)

    return Profile(
        model=data["model"],
        rows=data["rows"],
        features=tuple(feature(i, f, "features") for i, f in enumerate(data["features"])),
        predictions=tuple(feature(i, f, "predictions") for i, f in enumerate(data["predictions"])),
        source=data.get("source", ""),
    )

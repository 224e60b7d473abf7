"""What tells versions apart while they serve side by side (a canary, a shadow): identity labels
(model, version, environment, track) on every metric family, the distribution of predictions per
version when the manifest declares its output, and capture sampling that the stable version and its
shadow decide alike from the request id. Imports nothing of gitops_ml (app.py wires it to the
settings and the metrics); per answer it costs one JSON parse of the (small) response and a few dict
updates on the event loop.
"""

from __future__ import annotations

import bisect
import zlib
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping

import orjson
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

PREDICTIONS_METRIC = "gitops_ml_predictions"  # a counter: exposed as gitops_ml_predictions_total{class}
SCORE_METRIC = "gitops_ml_prediction_score"  # a histogram of numeric predictions
OTHER = "other"  # the label of every class beyond the declared or the first max_classes ones
DEFAULT_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
IDENTITY_LABELS = ("model", "version", "environment", "track")
CLASS = "class"
SCORE = "score"
_SAMPLING_SCALE = 2**32


@dataclass(frozen=True)
class OutputDeclaration:
    """The manifest's `output:` as the server reads it from GITOPS_ML_PREDICTION_METRICS (JSON)."""

    kind: str
    field: str
    classes: tuple[str, ...] = ()
    max_classes: int = 10
    buckets: tuple[float, ...] = ()

    def to_json(self) -> str:
        body: dict[str, Any] = {"kind": self.kind, "field": self.field}
        if self.classes:
            body["classes"] = list(self.classes)
        if self.kind == CLASS and not self.classes:
            body["maxClasses"] = self.max_classes
        if self.buckets:
            body["buckets"] = list(self.buckets)
        return orjson.dumps(body).decode()

    @classmethod
    def from_json(cls, text: str) -> "OutputDeclaration | None":
        """The declaration, or None for '' (no output declared); ValueError naming what is wrong."""
        if not text.strip():
            return None
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"GITOPS_ML_PREDICTION_METRICS is not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("kind") not in (CLASS, SCORE) or not isinstance(doc.get("field"), str) or not doc["field"]:
            raise ValueError('GITOPS_ML_PREDICTION_METRICS must be {"kind": "class" or "score", "field": NAME, ...}')
        buckets = tuple(float(b) for b in doc.get("buckets") or ())
        if list(buckets) != sorted(set(buckets)):
            raise ValueError("GITOPS_ML_PREDICTION_METRICS: buckets must increase")
        return cls(
            kind=doc["kind"],
            field=doc["field"],
            classes=tuple(str(c) for c in doc.get("classes") or ()),
            max_classes=max(1, min(100, int(doc.get("maxClasses", 10)))),
            buckets=buckets,
        )


class Predictions:
    """Counts the predictions of the answers this server gives: by class (bounded) or as a histogram."""

    def __init__(self, declaration: OutputDeclaration) -> None:
        self.declaration = declaration
        self.field = declaration.field
        self.is_class = declaration.kind == CLASS
        # declared classes exist from the start at 0: a series first seen at n loses those n from rate()
        self.counts: dict[str, int] = {label: 0 for label in (*declaration.classes, OTHER)} if declaration.classes else {}
        # raw value -> label; bounded like the labels themselves (values beyond the bound cost a str())
        self.labels: dict[Any, str] = {}
        self.open = not declaration.classes  # new classes may still get a series of their own
        self.allowed = set(declaration.classes)
        self.bounds = declaration.buckets or DEFAULT_BUCKETS
        self.buckets = [0] * (len(self.bounds) + 1)
        self.total = 0.0
        self.unreadable = 0

    def observe(self, body: bytes) -> None:
        """Count the predictions of one 200 answer (its JSON body); an answer without the field counts as unreadable."""
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            self.unreadable += 1
            return
        value = answer.get(self.field) if isinstance(answer, dict) else None
        if value is None:
            self.unreadable += 1
            return
        values = value if isinstance(value, list) else (value,)
        if self.is_class:
            self._classes(values)
        else:
            self._scores(values)

    def _classes(self, values: Iterable[Any]) -> None:
        counts, labels = self.counts, self.labels
        for value in values:
            found: str | None = None
            if value is not True and value is not False:  # True == 1 as a dict key: never share 1's label
                try:
                    found = labels.get(value)
                except TypeError:  # a list or an object is not a class label
                    self.unreadable += 1
                    continue
            label = found if found is not None else self._label(value)
            counts[label] = counts.get(label, 0) + 1

    def _label(self, value: Any) -> str:
        if isinstance(value, float) and value.is_integer():
            text = str(int(value))  # 1.0 and 1 are one class: JSON writers differ
        else:
            text = str(value).lower() if isinstance(value, bool) else str(value)
        if text in self.allowed:
            label = text
        elif self.open and len(self.allowed) < self.declaration.max_classes:
            self.allowed.add(text)
            label = text
        else:
            label = OTHER
        if not isinstance(value, bool) and len(self.labels) < 4 * self.declaration.max_classes + 100:
            self.labels[value] = label
        return label

    def _scores(self, values: Iterable[Any]) -> None:
        for value in values:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.unreadable += 1
                continue
            self.buckets[bisect.bisect_left(self.bounds, value)] += 1
            self.total += value

    def collect(self) -> Iterator[Metric]:
        if self.is_class:
            family = CounterMetricFamily(PREDICTIONS_METRIC, "Predictions answered, by class (the declared classes or the first ones seen; the rest as \"other\").", labels=[CLASS])
            for label, count in sorted(self.counts.items()):
                family.add_metric([label], count)
            yield family
        else:
            buckets, running = [], 0
            for bound, count in zip((*map(_bound, self.bounds), "+Inf"), self.buckets):
                running += count
                buckets.append((bound, running))
            histogram = HistogramMetricFamily(SCORE_METRIC, "Numeric predictions answered.")
            histogram.add_metric([], buckets, self.total)
            yield histogram
        unreadable = CounterMetricFamily("gitops_ml_predictions_unreadable", "Answers (or values in them) that did not hold the declared output.")
        unreadable.add_metric([], self.unreadable)
        yield unreadable


def _bound(value: float) -> str:
    return repr(float(value))


class IdentityLabels:
    """A collector that adds the server's identity labels to every sample of another collector, so
    that a stable version and its candidates can be told apart in one Prometheus; empty values are
    left out (the stable version has no track)."""

    def __init__(self, inner: Any, labels: Mapping[str, str]) -> None:
        self.inner = inner
        self.labels = {k: v for k, v in labels.items() if v}

    def collect(self) -> Iterator[Metric]:
        extra = self.labels
        for family in self.inner.collect():
            family.samples = [
                Sample(s.name, {**{k: v for k, v in extra.items() if k not in s.labels}, **s.labels}, s.value, s.timestamp, s.exemplar)
                for s in family.samples
            ]
            yield family


def identity(model: str, version: str, environment: str = "", track: str = "") -> dict[str, str]:
    return dict(zip(IDENTITY_LABELS, (model, version, environment, track)))


def sampled(request_id: str, rate: float) -> bool:
    """Whether a request is captured: decided by its id, so that a stable version and the shadow that
    receives the mirror of the same request (same X-Request-Id) capture the same requests."""
    if rate >= 1.0:
        return True
    return zlib.crc32(request_id.encode()) < rate * _SAMPLING_SCALE

"""`shadow report`: the answers a shadow gave to mirrored requests, joined by request id with the
answers the stable version gave to the same requests, from captures. With a declared output of
classes: agreement and a stable x candidate confusion table; of scores: error statistics; always:
status and latency of each, and the first disagreements with their inputs. Markdown for a pull
request comment and JSON for machines are built here as text; only the CLI prints.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops_ml.errors import UsageError
from gitops_ml.registry.versions import resolve_model_version
from gitops_ml.repo.handle import Repository
from gitops_ml.rollout.captures import CaptureRecord, ReadStats, read_captures
from gitops_ml.rollout.queries import shared_output_kind
from gitops_ml.rollout.status import find_deployment
from gitops_ml.types import OutputSpec, Version
from gitops_ml.validate.rules import require_specs

SHADOW = "shadow"
INPUT_CHARS = 300  # of each disagreement's input in the report


@dataclass(frozen=True)
class Latency:
    count: int
    p50_ms: float | None
    p99_ms: float | None

    @classmethod
    def of(cls, values: list[float]) -> "Latency":
        ordered = sorted(values)
        return cls(len(ordered), _quantile(ordered, 0.5), _quantile(ordered, 0.99))


@dataclass(frozen=True)
class Disagreement:
    request_id: str
    time: str
    input: Any
    stable: Any
    candidate: Any


@dataclass(frozen=True)
class ScoreErrors:
    """candidate - stable over every compared prediction."""

    count: int
    mean: float
    mean_absolute: float
    root_mean_square: float
    max_absolute: float


@dataclass
class ShadowReport:
    model: str
    environment: str
    stable: Version
    candidate: Version
    output: OutputSpec | None  # the output both versions declare (None: answers compared whole)
    stable_records: int = 0
    candidate_records: int = 0
    joined: int = 0
    compared: int = 0  # predictions (or whole answers) compared
    agreed: int = 0
    stable_errors: int = 0  # joined requests the stable version did not answer 200
    candidate_errors: int = 0
    stable_latency: Latency = Latency(0, None, None)
    candidate_latency: Latency = Latency(0, None, None)
    confusion: dict[tuple[str, str], int] = field(default_factory=dict)
    score_errors: ScoreErrors | None = None
    disagreements: list[Disagreement] = field(default_factory=list)
    unreadable_lines: int = 0
    directories: list[str] = field(default_factory=list)

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None


@dataclass(frozen=True)
class ShadowReportRequest:
    repo: Repository
    model: str
    environment: str
    capture: Path
    limit: int = 5  # disagreements listed
    tolerance: float = 1e-9  # scores closer than this agree


def shadow_report(request: ShadowReportRequest) -> ShadowReport:
    """Join the captures of the deployment's stable version and its shadow; UsageError when the
    deployment file declares no shadow or nothing was captured."""
    repository = request.repo
    specs = require_specs(repository, "{errors} problem(s) in the repository; fix them first (`gitops-ml validate`)")
    dep, path = find_deployment(specs, request.model, request.environment)
    shadow = dep.rollout.shadow
    if shadow is None or shadow.pin.version is None:
        raise UsageError(f"{path} declares no shadow (rollout.shadow)")
    stable = dep.pin.version or specs.models[dep.model].spec.version
    stable_manifest = resolve_model_version(repository, specs, dep.model, stable).entry.manifest
    candidate_manifest = resolve_model_version(repository, specs, dep.model, shadow.pin.version).entry.manifest
    output = stable_manifest.output if shared_output_kind(stable_manifest, candidate_manifest) else None
    report = ShadowReport(dep.model, dep.environment, stable, shadow.pin.version, output)
    compare_captures(report, request.capture, request.limit, request.tolerance)
    if report.stable_records == 0 and report.candidate_records == 0:
        raise UsageError(
            f"no captures of {dep.model}@{stable} or of its shadow {shadow.pin} under {request.capture}",
            hint="the stable version and the shadow capture with telemetry.capture.enabled; point --capture at the directory that holds <model>/<version>/",
        )
    return report


def compare_captures(report: ShadowReport, directory: Path, limit: int, tolerance: float = 1e-9) -> None:
    """Fill report from the captures under directory (pure but for reading the files)."""
    stats = ReadStats()
    shadow: dict[str, CaptureRecord] = {}
    for record in read_captures(directory, report.model, str(report.candidate), stats):
        if record.track == SHADOW:
            shadow.setdefault(record.request_id, record)
    report.candidate_records = len(shadow)
    sums = _ScoreSums()
    stable_latency: list[float] = []
    candidate_latency: list[float] = []
    for record in read_captures(directory, report.model, str(report.stable), stats):
        if record.track == SHADOW:
            continue
        report.stable_records += 1
        other = shadow.get(record.request_id)
        if other is None:
            continue
        report.joined += 1
        stable_latency.append(record.latency_ms)
        candidate_latency.append(other.latency_ms)
        if record.status != 200:
            report.stable_errors += 1
        if other.status != 200:
            report.candidate_errors += 1
        if record.status == 200 and other.status == 200:
            _compare(report, record, other, limit, tolerance, sums)
        elif record.status != other.status and len(report.disagreements) < limit:
            report.disagreements.append(Disagreement(record.request_id, record.time, record.input, record.output, other.output))
    report.stable_latency, report.candidate_latency = Latency.of(stable_latency), Latency.of(candidate_latency)
    report.unreadable_lines = stats.unreadable
    report.directories = stats.directories
    report.score_errors = sums.errors()


@dataclass
class _ScoreSums:
    count: int = 0
    total: float = 0.0
    absolute: float = 0.0
    squares: float = 0.0
    largest: float = 0.0

    def add(self, delta: float) -> None:
        self.count += 1
        self.total += delta
        self.absolute += abs(delta)
        self.squares += delta * delta
        self.largest = max(self.largest, abs(delta))

    def errors(self) -> ScoreErrors | None:
        n = self.count
        return ScoreErrors(n, self.total / n, self.absolute / n, math.sqrt(self.squares / n), self.largest) if n else None


def _compare(report: ShadowReport, stable: CaptureRecord, candidate: CaptureRecord, limit: int, tolerance: float, sums: _ScoreSums) -> None:
    output = report.output
    disagree = False
    if output is None:
        report.compared += 1
        if stable.output == candidate.output:
            report.agreed += 1
        else:
            disagree = True
    else:
        mine, theirs = _values(stable.output, output.field), _values(candidate.output, output.field)
        if mine is None or theirs is None or len(mine) != len(theirs):
            report.compared += 1
            disagree = True
        elif output.kind == "class":
            for a, b in zip(mine, theirs):
                left, right = _label(a), _label(b)
                report.compared += 1
                report.confusion[(left, right)] = report.confusion.get((left, right), 0) + 1
                if left == right:
                    report.agreed += 1
                else:
                    disagree = True
        else:
            for a, b in zip(mine, theirs):
                if not _number(a) or not _number(b):
                    report.compared += 1
                    disagree = True
                    continue
                delta = float(b) - float(a)
                report.compared += 1
                sums.add(delta)
                if abs(delta) <= tolerance:
                    report.agreed += 1
                else:
                    disagree = True
    if disagree and len(report.disagreements) < limit:
        report.disagreements.append(Disagreement(stable.request_id, stable.time, stable.input, stable.output, candidate.output))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _values(answer: Any, key: str) -> list[Any] | None:
    if not isinstance(answer, dict) or key not in answer:
        return None
    value = answer[key]
    return value if isinstance(value, list) else [value]


def _label(value: Any) -> str:
    """A class as the server's prediction counter names it (1 and 1.0 are one class)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


# --- reports as text -----------------------------------------------------------------------------


def to_json(report: ShadowReport) -> dict[str, Any]:
    return {
        "model": report.model,
        "environment": report.environment,
        "stable": str(report.stable),
        "candidate": str(report.candidate),
        "output": {"kind": report.output.kind, "field": report.output.field} if report.output else None,
        "records": {"stable": report.stable_records, "candidate": report.candidate_records, "joined": report.joined, "unreadableLines": report.unreadable_lines},
        "compared": report.compared,
        "agreed": report.agreed,
        "agreement": report.agreement,
        "errors": {"stable": report.stable_errors, "candidate": report.candidate_errors},
        "latencyMs": {
            "stable": {"count": report.stable_latency.count, "p50": report.stable_latency.p50_ms, "p99": report.stable_latency.p99_ms},
            "candidate": {"count": report.candidate_latency.count, "p50": report.candidate_latency.p50_ms, "p99": report.candidate_latency.p99_ms},
        },
        "confusion": [{"stable": s, "candidate": c, "count": n} for (s, c), n in sorted(report.confusion.items())],
        "scoreErrors": None if report.score_errors is None else {
            "count": report.score_errors.count,
            "mean": report.score_errors.mean,
            "meanAbsolute": report.score_errors.mean_absolute,
            "rootMeanSquare": report.score_errors.root_mean_square,
            "maxAbsolute": report.score_errors.max_absolute,
        },
        "disagreements": [
            {"requestId": d.request_id, "time": d.time, "input": d.input, "stable": d.stable, "candidate": d.candidate} for d in report.disagreements
        ],
    }


def to_markdown(report: ShadowReport) -> str:
    s, c = report.stable, report.candidate
    lines = [f"### Shadow report: {report.model} in {report.environment}, candidate {c} against stable {s}", ""]
    agreement = report.agreement
    what = "predictions" if report.output is not None else "answers"
    if agreement is None:
        lines.append(f"No request was answered 200 by both versions ({report.joined} joined by request id).")
    else:
        lines.append(f"**Agreement: {agreement * 100:.2f} %** of {report.compared:,} {what} to {report.joined:,} mirrored requests.")
    lines += [
        "",
        f"| | stable {s} | candidate {c} |",
        "|---|---:|---:|",
        f"| captured requests | {report.stable_records:,} | {report.candidate_records:,} |",
        f"| answered other than 200 (of joined) | {report.stable_errors:,} | {report.candidate_errors:,} |",
        f"| latency p50 | {_ms(report.stable_latency.p50_ms)} | {_ms(report.candidate_latency.p50_ms)} |",
        f"| latency p99 | {_ms(report.stable_latency.p99_ms)} | {_ms(report.candidate_latency.p99_ms)} |",
    ]
    if report.confusion:
        stable_classes = sorted({a for a, _ in report.confusion}, key=_class_order)
        candidate_classes = sorted({b for _, b in report.confusion}, key=_class_order)
        lines += ["", "Confusion (rows: stable, columns: candidate):", "",
                  "| stable \\ candidate | " + " | ".join(_cell(x) for x in candidate_classes) + " |",
                  "|---|" + "---:|" * len(candidate_classes)]
        for a in stable_classes:
            lines.append(f"| {_cell(a)} | " + " | ".join(f"{report.confusion.get((a, b), 0):,}" for b in candidate_classes) + " |")
    if report.score_errors is not None:
        e = report.score_errors
        lines += ["", "Score differences (candidate - stable):", "", "| n | mean | mean absolute | RMS | max absolute |", "|---:|---:|---:|---:|---:|",
                  f"| {e.count:,} | {e.mean:.6g} | {e.mean_absolute:.6g} | {e.root_mean_square:.6g} | {e.max_absolute:.6g} |"]
    if report.disagreements:
        lines += ["", f"First {len(report.disagreements)} disagreement(s):", "", "| request id | input | stable | candidate |", "|---|---|---|---|"]
        for d in report.disagreements:
            lines.append(f"| `{_cell(d.request_id)}` | `{_cell(_short(d.input))}` | `{_cell(_short(d.stable))}` | `{_cell(_short(d.candidate))}` |")
    if report.unreadable_lines:
        lines += ["", f"{report.unreadable_lines} capture line(s) could not be read and were skipped."]
    return "\n".join(lines) + "\n"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _class_order(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def _short(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= INPUT_CHARS else text[: INPUT_CHARS - 1] + "…"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "'")

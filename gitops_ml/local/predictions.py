"""The predictions diff of a retraining: the committed sample scored by the old version and by the
new one, each from its own files and in its own environment (`environment`, `runner`), row by row,
as markdown for the pull request. A version that cannot score is part of the answer, not an error.
Never prints; progress goes through a callback.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from gitops_ml.errors import GitopsMlError, Location
from gitops_ml.repo.loading import parse_yaml
from gitops_ml.repo.sources import FileSource
from gitops_ml.types import MODELS_DIR, Kind, ManifestSpec, ModelSpec

Progress = Callable[[str], None]

MAX_ROWS = 50  # rows listed in the pull request (changed rows first)
MAX_CELL = 80  # characters of one input or answer cell
SCORE_TOLERANCE = 1e-9  # relative: scores closer than this agree


@dataclass(frozen=True)
class VersionFiles:
    """One version of a model as files: the model directory's, keyed by path relative to it."""

    version: str
    spec: ModelSpec
    manifest: ManifestSpec
    files: Mapping[str, bytes]


@dataclass(frozen=True)
class Answer:
    """What one version answered to the sample: a status and the parsed body, or why it did not."""

    status: int
    body: Any
    error: str = ""  # init() failed, or the environment could not be made

    @property
    def ok(self) -> bool:
        return not self.error and self.status == 200


@dataclass(frozen=True)
class Row:
    index: int  # 0-based row of the sample (0 when answers are compared whole)
    input: Any  # the sample's row, when the sample has rows
    old: Any
    new: Any
    changed: bool


@dataclass(frozen=True)
class PredictionsDiff:
    model: str
    old_version: str
    new_version: str
    sample: str  # the sample's path, relative to the model directory
    field: str  # the answer's field compared per row ("" = whole answers)
    old: Answer
    new: Answer
    rows: tuple[Row, ...]

    @property
    def changed(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.changed)

    @property
    def agreement(self) -> float | None:
        return (len(self.rows) - len(self.changed)) / len(self.rows) if self.rows else None


@dataclass(frozen=True)
class PredictionsRequest:
    model: str
    old: VersionFiles
    new: VersionFiles
    env_manager: str = "venv"  # venv: each version in its own environment; local: this Python, one process per version
    cache: Path | None = None  # environments and artifacts; None = the user's cache


def version_files(source: FileSource, model: str, overrides: Mapping[str, str] | None = None) -> VersionFiles:
    """A model's files in a tree (the working tree, a commit), with `overrides` (repository-relative
    path -> text: an edit not written yet) in place of what the tree holds."""
    model_dir = f"{MODELS_DIR}/{model}"
    changed = {
        rel[len(model_dir) + 1 :]: text.encode("utf-8")
        for rel, text in (overrides or {}).items()
        if rel.startswith(model_dir + "/")
    }
    files = {rel[len(model_dir) + 1 :]: source.read(rel) for rel in source.walk_files(model_dir)}
    files.update(changed)
    if "model.yaml" not in files or "manifest.yaml" not in files:
        raise GitopsMlError(f"{model_dir}/ has no model.yaml and manifest.yaml in the {source.label}")
    try:
        spec = ModelSpec.from_doc(parse_yaml(f"{model_dir}/model.yaml", files["model.yaml"], Kind.MODEL).data)
        manifest = ManifestSpec.from_doc(
            parse_yaml(f"{model_dir}/manifest.yaml", files["manifest.yaml"], Kind.MANIFEST).data
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise GitopsMlError(f"{model_dir}/ in the {source.label} does not validate ({exc})") from exc
    return VersionFiles(str(spec.version), spec, manifest, files)


def compare_predictions(request: PredictionsRequest, progress: Progress | None = None) -> PredictionsDiff:
    """Score the new version's committed sample with both versions and line the answers up."""
    say = progress or (lambda _: None)
    sample_name = request.new.manifest.sample or "sample.json"
    sample = request.new.files.get(os.path.normpath(sample_name))
    if sample is None:
        raise GitopsMlError(
            f"{request.new.version} has no committed sample ({sample_name})",
            location=Location(f"models/{request.model}/manifest.yaml"),
            hint="commit one request body as sample.json: it is what the versions are compared on",
        )
    # two processes that mostly wait for imports and init(): side by side, the diff takes as long as the slower one
    with ThreadPoolExecutor(max_workers=2) as pool:
        old_future = pool.submit(_score, request, request.old, sample, say)
        new_future = pool.submit(_score, request, request.new, sample, say)
        old, new = old_future.result(), new_future.result()
    output = request.new.manifest.output or request.old.manifest.output
    parsed = _parse(sample)
    field = row_field(parsed, old, new, output.field if output is not None else "")
    rows = _rows(parsed, old, new, field, output.kind if output is not None else "")
    return PredictionsDiff(request.model, request.old.version, request.new.version, sample_name, field, old, new, rows)


def _score(request: PredictionsRequest, version: VersionFiles, body: bytes, say: Progress) -> Answer:
    from gitops_ml.adapters.artifacts import cache_root  # noqa: PLC0415 - imports httpx
    from gitops_ml.local.environment import ensure_environment  # noqa: PLC0415
    from gitops_ml.local.runner import model_files, predict_in  # noqa: PLC0415
    from gitops_ml.serving.settings import ServerSettings  # noqa: PLC0415

    cache = request.cache or cache_root()
    label = f"{request.model}@{version.version}"
    say(f"scoring the sample with {label}")
    with tempfile.TemporaryDirectory(prefix="gitops-ml-version-") as tmp:
        model_dir = Path(tmp) / "models" / request.model
        try:
            _materialize(request.model, version, model_dir, cache, say)
            settings = ServerSettings.from_specs(version.spec, version.manifest, model_dir=str(model_dir))
            files = model_files(version.spec, version.manifest)
            if request.env_manager == "local":
                python = Path(sys.executable)
            else:
                python = ensure_environment(model_dir, version.manifest, cache=cache, progress=say, label=label).python
            scored = predict_in(python, settings, files, body)
        except GitopsMlError as exc:
            return Answer(0, None, f"{exc.message}" + (f" ({exc.hint})" if exc.hint else ""))
    if scored.error:
        return Answer(0, None, scored.error.replace(str(model_dir) + "/", ""))
    return Answer(scored.status, _parse(scored.body))


def _materialize(model: str, version: VersionFiles, target: Path, cache: Path, say: Progress) -> None:
    """The version's files in a directory of their own; a remote artifact fetched (and verified) to
    where the image puts it."""
    for rel, data in version.files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    artifact = version.spec.artifact
    if artifact.scheme != "path":
        from gitops_ml.adapters.artifacts import ArtifactRequest, fetch_artifact  # noqa: PLC0415

        fetched = fetch_artifact(
            ArtifactRequest(model, artifact, Location(f"models/{model}/model.yaml"), version.files),
            cache=cache,
            progress=say,
        )
        (target / artifact.path).parent.mkdir(parents=True, exist_ok=True)
        (target / artifact.path).write_bytes(fetched.read_bytes())


def _parse(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


ROWS = "[rows]"  # `field` when the answers themselves are lists, one entry per row


def _values(answer: Answer, field: str) -> list[Any] | None:
    if not answer.ok or not field:
        return None
    if field == ROWS:
        return answer.body if isinstance(answer.body, list) else None
    if not isinstance(answer.body, dict) or field not in answer.body:
        return None
    value = answer.body[field]
    return value if isinstance(value, list) else [value]


def _per_row(old: Answer, new: Answer, field: str) -> bool:
    a, b = _values(old, field), _values(new, field)
    return a is not None and b is not None and len(a) == len(b)


def row_field(sample: Any, old: Answer, new: Answer, declared: str) -> str:
    """Which part of the answers holds one prediction per row: the manifest's declared output
    field, else the answers themselves when they are lists, else the one list field both answers
    have with as many entries as the sample has rows; "" compares the answers whole."""
    if declared:
        return declared if _per_row(old, new, declared) else ""
    if _per_row(old, new, ROWS):
        return ROWS
    if not (old.ok and new.ok and isinstance(old.body, dict) and isinstance(new.body, dict)):
        return ""
    shared = sorted(
        k for k in old.body.keys() & new.body.keys() if _per_row(old, new, k) and isinstance(old.body[k], list)
    )
    fitting = [k for k in shared if _sample_rows(sample, len(old.body[k])) is not None]
    return fitting[0] if len(fitting) == 1 else ""


def _sample_rows(sample: Any, n: int) -> list[Any] | None:
    """The sample's rows when it has n of them: the first list of length n among its inputs."""
    if isinstance(sample, list) and len(sample) == n:
        return sample
    if isinstance(sample, dict):
        for value in sample.values():
            if isinstance(value, list) and len(value) == n:
                return value
    return None


def _rows(sample: Any, old: Answer, new: Answer, field: str, kind: str) -> tuple[Row, ...]:
    a, b = _values(old, field), _values(new, field)
    if a is not None and b is not None and len(a) == len(b):
        inputs = _sample_rows(sample, len(a))
        return tuple(
            Row(i, inputs[i] if inputs is not None else None, x, y, not _same(x, y, kind))
            for i, (x, y) in enumerate(zip(a, b))
        )
    left = old.body if old.ok else _failure(old)
    right = new.body if new.ok else _failure(new)
    return (Row(0, None, left, right, not (old.ok and new.ok and _same(old.body, new.body, ""))),)


def _failure(answer: Answer) -> str:
    if answer.error:
        return f"failed: {answer.error}"
    message = answer.body.get("message") if isinstance(answer.body, dict) else None
    return f"{answer.status}: {message or answer.body}"


def _same(a: Any, b: Any, kind: str) -> bool:
    if kind == "class":
        return _label(a) == _label(b)
    if _number(a) and _number(b):
        return math.isclose(float(a), float(b), rel_tol=SCORE_TOLERANCE, abs_tol=1e-12)
    return bool(a == b)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _label(value: Any) -> str:
    """A class as the server's prediction counter names it (1 and 1.0 are one class)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value).lower() if isinstance(value, bool) else str(value)


# --- markdown ------------------------------------------------------------------------------------


def short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _cell(value: Any) -> str:
    return "`" + short(value).replace("|", "\\|").replace("`", "'") + "`"


def to_markdown(diff: PredictionsDiff, *, env_manager: str = "venv") -> str:
    """The section of the pull request body: agreement, then the rows, changed ones first."""
    where = "each in its own environment" if env_manager != "local" else "each in a process of its own"
    lines = ["#### Predictions on the committed sample", ""]
    lines.append(f"`{diff.sample}` scored by {diff.old_version} (before) and {diff.new_version} (after), {where}.")
    lines.append("")
    for label, answer in ((diff.old_version, diff.old), (diff.new_version, diff.new)):
        if not answer.ok:
            lines += [
                f"> **{label} could not score the sample:** {short(_failure(answer)) if not answer.error else answer.error.splitlines()[0]}",
                "",
            ]
    agreed = len(diff.rows) - len(diff.changed)
    what = "rows" if diff.field else "answers"
    share = f" ({diff.agreement * 100:.1f} %)" if diff.agreement is not None else ""
    compared = (
        ""
        if not diff.field
        else " Compared: each answer's entries."
        if diff.field == ROWS
        else f" Compared: `{diff.field}` of each answer."
    )
    lines.append(f"**Agreement: {agreed} of {len(diff.rows)} {what}{share}**; {len(diff.changed)} changed.{compared}")
    lines += [
        "",
        f"| row | input | {diff.old_version} (before) | {diff.new_version} (after) | |",
        "|---:|---|---|---|---|",
    ]
    ordered = [*diff.changed, *(r for r in diff.rows if not r.changed)]
    for row in ordered[:MAX_ROWS]:
        shown = _cell(row.input) if row.input is not None else "–"
        lines.append(
            f"| {row.index} | {shown} | {_cell(row.old)} | {_cell(row.new)} | {'**changed**' if row.changed else ''} |"
        )
    if len(ordered) > MAX_ROWS:
        rest = ordered[MAX_ROWS:]
        lines.append("")
        lines.append(f"… {len(rest)} more row(s) not shown ({sum(r.changed for r in rest)} of them changed).")
    return "\n".join(lines) + "\n"


def unavailable(reason: str) -> str:
    """The section when the diff could not be made: the pull request is still worth opening."""
    return f"#### Predictions on the committed sample\n\n_(predictions diff unavailable: {reason})_\n"

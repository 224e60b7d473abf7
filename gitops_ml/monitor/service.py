"""`profile` and `monitor` as requests: the repository, the version running in an environment, its
reference profile, and the captured records (a directory, or the sink's object store through
adapters.objectstore), turned into a Profile written into the model directory or a MonitorReport.
Never prints; progress goes to an optional callback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from gitops_ml.errors import LoadError, Location, UsageError
from gitops_ml.monitor.features import Assignment, assign_columns, features_for_schema
from gitops_ml.monitor.profile import CATEGORICAL, NUMERIC, Profile, load_profile, profile_column
from gitops_ml.monitor.records import Records, Wanted, Window, local_files, read_records, wanted
from gitops_ml.monitor.report import MonitorReport, judge
from gitops_ml.repo.handle import Repository
from gitops_ml.repo.loading import Document, parse_json, parse_yaml
from gitops_ml.repo.sources import FileSource
from gitops_ml.types import MODELS_DIR, DeploymentSpec, Kind, ModelName, Version
from gitops_ml.validate.rules import require_specs
from gitops_ml.validate.specs import Specs

DEFAULT_PROFILE = "reference.json"
DEFAULT_WINDOW = timedelta(hours=24)
_DURATION = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
Progress = Callable[[str], None]


def parse_moment(text: str, now: datetime) -> datetime:
    """A point in time: a duration back from now (30m, 24h, 7d, 2w) or an ISO date or date-time (UTC unless it says)."""
    match = _DURATION.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{text!r} is neither a duration (30m, 24h, 7d) nor an ISO date or date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# --- profile -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileRequest:
    repo: Repository
    model: str
    data: Path
    predictions: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    output: str = ""  # file name in the model directory; "" keeps model.yaml's reference, else reference.json


@dataclass(frozen=True)
class ProfileResult:
    path: str  # repository-relative
    profile: Profile
    model_file_changed: bool  # model.yaml's `reference:` was set


def run_profile(request: ProfileRequest) -> ProfileResult:
    from gitops_ml.atomic import write_atomic  # noqa: PLC0415
    from gitops_ml.repo.editing import SetValue, plan_file_edit, write_file_edits  # noqa: PLC0415

    model_dir = f"{MODELS_DIR}/{request.model}"
    if not (request.repo.root / model_dir).is_dir():
        raise UsageError(f"no model {request.model!r}: {model_dir}/ does not exist in {request.repo.root}")
    model_doc = _read_yaml(request.repo.root, f"{model_dir}/model.yaml", Kind.MODEL)
    manifest_doc = _read_yaml(request.repo.root, f"{model_dir}/manifest.yaml", Kind.MANIFEST)
    schema = _input_schema(request.repo.worktree, model_dir, manifest_doc.data.get("schema", ""))
    frame = read_table(request.data)
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    predictions = list(request.predictions) or [c for c in columns if c in ("prediction", "predictions")]
    assignment = assign_columns(columns, features_for_schema(schema), predictions)
    for flag, names in (("--categorical", request.categorical), ("--numeric", request.numeric)):
        for name in names:
            if name not in columns:
                raise UsageError(f"{flag} {name}: the data has no column {name!r}", hint=f"columns: {', '.join(columns)}")
    profile = _make_profile(request, frame, assignment)
    output = request.output or str(model_doc.data.get("reference") or DEFAULT_PROFILE)
    if "/" in output or not output.endswith(".json"):
        raise UsageError(f"--output {output}: a .json file name inside {model_dir}/")
    rel = f"{model_dir}/{output}"
    write_atomic(request.repo.root / rel, profile.to_json())
    changed = False
    if model_doc.data.get("reference") != output:
        edit = plan_file_edit(request.repo.root, f"{model_dir}/model.yaml", [SetValue(("reference",), output)])
        changed = bool(write_file_edits(request.repo.root, [edit]))
    return ProfileResult(rel, profile, changed)


def _make_profile(request: ProfileRequest, frame: pd.DataFrame, assignment: Assignment) -> Profile:
    def kind(column: str) -> str | None:
        return CATEGORICAL if column in request.categorical else NUMERIC if column in request.numeric else None

    try:
        features = tuple(profile_column(c, p, frame[c], kind(c)) for c, p in assignment.features)
        predictions = tuple(profile_column(c, p, frame[c], kind(c)) for c, p in assignment.predictions)
    except ValueError as exc:
        raise LoadError(f"{request.data}: {exc}") from exc
    return Profile(request.model, len(frame), features, predictions, source=request.data.name, notes=assignment.notes)


def read_table(path: Path) -> pd.DataFrame:
    """Training data: CSV, Parquet or JSON lines, by extension."""
    name = path.name.lower()
    if not path.is_file():
        raise UsageError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    try:
        if name.endswith((".csv", ".csv.gz", ".tsv")):
            frame = pd.read_csv(path, sep="\t" if name.endswith(".tsv") else ",")
        elif name.endswith((".parquet", ".pq")):
            import duckdb  # noqa: PLC0415 - the monitor extra; reads Parquet without pyarrow

            frame = duckdb.read_parquet(str(path)).df()
        elif name.endswith((".jsonl", ".ndjson", ".jsonl.gz", ".json")):
            frame = pd.read_json(path, lines=not name.endswith(".json"), orient=None if name.endswith(".json") else "records")
        else:
            raise UsageError(f"{path}: unknown data format", hint="give a .csv, .parquet or .jsonl file")
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - pandas and DuckDB raise many kinds for a bad file
        raise LoadError(f"cannot read {path}: {exc}", location=Location(str(path))) from exc
    if frame.empty:
        raise UsageError(f"{path} has no rows")
    return frame


def _read_yaml(root: Path, rel: str, kind: Kind) -> Document:
    try:
        raw = (root / rel).read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read {rel}: {exc.strerror}", location=Location(rel)) from exc
    doc = parse_yaml(rel, raw, kind)
    if not isinstance(doc.data, dict) or doc.data.get("kind") != kind.value:
        raise LoadError(f"expected kind: {kind.value}", location=Location(rel), hint="run `gitops-ml validate`")
    return doc


def _input_schema(source: FileSource, model_dir: str, rel: str) -> Mapping[str, Any]:
    if not rel:
        return {}
    path = f"{model_dir}/{rel}"
    try:
        data = parse_json(path, source.read(path)).data
    except FileNotFoundError:
        raise LoadError(f"{path} does not exist", location=Location(path)) from None
    return data if isinstance(data, dict) else {}


def check_reference(repo: Repository, model: str, path: Path) -> str:
    """The text of a reference profile file for `bump --reference`, once it is known to be a
    profile (its schema), of this model, whose features read inputs the working tree's input schema
    declares; LoadError located in the file otherwise."""
    model_dir = f"{MODELS_DIR}/{model}"
    shown = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"--reference {shown} does not exist", hint=f"make one with `gitops-ml profile DATA --model {model}`") from None
    except OSError as exc:
        raise UsageError(f"--reference {shown}: cannot read it ({exc.strerror or exc})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LoadError(f"not UTF-8 text (byte {exc.start})", location=Location(shown)) from None
    profile = load_profile(shown, raw)
    doc = parse_json(shown, raw)
    if profile.model != model:
        where = doc.locate(["model"])
        raise LoadError(f"this is the reference profile of model {profile.model!r}, not {model!r}", location=where,
                        hint=f"profile {model}'s training data with `gitops-ml profile DATA --model {model}`")
    if not (repo.root / model_dir / "manifest.yaml").is_file():
        raise UsageError(f"unknown model {model!r}: {model_dir}/manifest.yaml does not exist")
    manifest = _read_yaml(repo.root, f"{model_dir}/manifest.yaml", Kind.MANIFEST)
    _check_profile_fits(profile, _input_schema(repo.worktree, model_dir, manifest.data.get("schema", "")), shown, doc)
    return text


# --- monitor -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitorRequest:
    repo: Repository
    model: str
    environment: str
    capture: str = ""  # a directory or s3://bucket/prefix; "" = the deployment file's sink
    since: datetime | None = None
    until: datetime | None = None
    version: str = ""  # "" = the version the environment runs
    cache: Path | None = None  # where objects from a store are kept; None = the user's cache
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


def run_monitor(request: MonitorRequest, progress: Progress | None = None) -> MonitorReport:
    say = progress or (lambda _: None)
    specs = require_specs(request.repo, "{errors} problem(s) in the repository; fix them first (`gitops-ml validate`)")
    deployment = _deployment(specs, request)
    version = _version(request, deployment, specs)
    from gitops_ml.registry.versions import resolve_model_version  # noqa: PLC0415 - imports git

    resolved = resolve_model_version(request.repo, specs, ModelName(request.model), version)
    entry, source = resolved.entry, resolved.source
    profile = _reference(request, entry.spec.reference, entry.dir, source, str(entry.spec.version))
    schema = _input_schema(source, entry.dir, entry.manifest.schema)
    _check_profile_fits(profile, schema, f"{entry.dir}/{entry.spec.reference}")
    since = request.since if request.since is not None or request.until is not None else request.now - DEFAULT_WINDOW
    if since is not None and request.until is not None and since >= request.until:
        raise UsageError(f"--since ({since.isoformat()}) is not before --until ({request.until.isoformat()}): the window is empty")
    window = Window(since, request.until)
    capture = request.capture or deployment.capture.sink_uri
    if not capture:
        raise UsageError(
            f"no captures to read: deployments/{request.environment}/{request.model}.yaml names no telemetry.capture.sink.uri",
            hint="give --capture DIR (what `gitops-ml serve` captured) or --capture s3://BUCKET/PREFIX",
        )
    files = _capture_files(request, capture, deployment, str(entry.spec.version), window, say)
    say(f"reading {len(files)} capture file(s)")
    wants = [Wanted(str(f.path), f.path, False, f.kind) for f in profile.features]
    wants += [Wanted("output:" + str(f.path), f.path, True, f.kind) for f in profile.predictions]
    records = read_records(files, model=request.model, version=str(entry.spec.version), window=window, features=wants)
    return judge(
        model=request.model, environment=request.environment, version=str(entry.spec.version), source=capture, window=window,
        profile=profile, records=records, thresholds=deployment.monitoring, request_timeout=deployment.requests.timeout,
        notes=_notes(records, profile), generated=request.now,
    )


def _deployment(specs: Specs, request: MonitorRequest) -> DeploymentSpec:
    if request.model not in specs.models:
        raise UsageError(f"unknown model {request.model!r}", hint="models: " + ", ".join(sorted(specs.models)))
    for dep in specs.deployments:
        if dep.model == request.model and dep.environment == request.environment:
            return dep
    where = sorted(d.environment for d in specs.deployments if d.model == request.model)
    raise UsageError(
        f"model {request.model} is not deployed in environment {request.environment!r}",
        hint=f"it is deployed in: {', '.join(where)}" if where else f"no deployments/<env>/{request.model}.yaml exists",
    )


def _version(request: MonitorRequest, deployment: DeploymentSpec, specs: Specs) -> Version | None:
    if request.version:
        try:
            return Version.parse(request.version)
        except ValueError as exc:
            raise UsageError(f"--version {request.version}: {exc}") from exc
    return deployment.pin.version


def _reference(request: MonitorRequest, reference: str, model_dir: str, source: FileSource, version: str) -> Profile:
    model_file = f"{model_dir}/model.yaml"
    if not reference:
        raise UsageError(
            f"{request.model} {version} has no reference profile (no `reference:` in {model_file})",
            hint=f"write one with `gitops-ml profile DATA --model {request.model}` and bump the version",
        )
    path = f"{model_dir}/{reference}"
    try:
        raw = source.read(path)
    except FileNotFoundError:
        location = Location(model_file)
        try:
            location = parse_yaml(model_file, source.read(model_file)).locate(["reference"])
        except (OSError, LoadError):
            pass
        raise LoadError(f"reference profile {path} does not exist ({source.label})", location=location, hint=f"write it with `gitops-ml profile DATA --model {request.model}`") from None
    profile = load_profile(path, raw)
    if profile.model != request.model:
        raise LoadError(f"{path} is the profile of model {profile.model!r}, not {request.model!r}", location=Location(path))
    return profile


def _check_profile_fits(profile: Profile, schema: Mapping[str, Any], path: str, doc: Document | None = None) -> None:
    """Every feature must read an input the schema declares (an old profile after a schema change does not)."""
    declared = set((schema.get("properties") or {}).keys())
    if not declared:
        return
    for i, feature in enumerate(profile.features):
        if feature.path.input not in declared:
            raise LoadError(
                f"the reference profile does not match the input schema: feature {feature.name!r} reads input {feature.path.input!r}, "
                f"which the schema does not declare (inputs: {', '.join(sorted(declared))})",
                location=doc.locate(["features", i, "path"]) if doc is not None else Location(path),
                hint="profile the data of this version again with `gitops-ml profile`",
            )


def _capture_files(request: MonitorRequest, capture: str, deployment: DeploymentSpec, version: str, window: Window, say: Progress) -> list[Path]:
    if "://" not in capture:
        root = Path(capture)
        if not root.exists():
            raise UsageError(f"capture directory {capture} does not exist")
        return local_files(root, request.model, window)
    from gitops_ml.adapters import objectstore  # noqa: PLC0415 - imports boto3

    location = objectstore.parse_location(capture)
    same_sink = capture.rstrip("/") == deployment.capture.sink_uri.rstrip("/")
    endpoint = deployment.capture.sink_endpoint if same_sink else ""
    region = deployment.capture.sink_region if same_sink else ""
    base = f"model={request.model}/version={version}/"
    say(f"listing {location}/{base}")
    dates = objectstore.list_partitions(location, base, endpoint=endpoint, region=region)
    prefixes = [f"{base}{d}/" for d in dates if d.startswith("date=") and window.hour_may_overlap(d[5:], None)]
    objects = [o for o in objectstore.list_objects(location, prefixes, endpoint=endpoint, region=region) if wanted(Path(o.relative(location)), request.model, window)]
    if request.cache is not None:
        cache = request.cache
    else:
        from gitops_ml.adapters.artifacts import cache_root  # noqa: PLC0415

        cache = cache_root() / "captures"
    say(f"fetching {len(objects)} object(s) from {location}")
    return objectstore.download(location, objects, cache, endpoint=endpoint, region=region)


def _notes(records: Records, profile: Profile) -> list[str]:
    notes = []
    if records.unreadable:
        notes.append(f"{records.unreadable} line(s) of the capture files were not readable JSON records and were skipped")
    for name in records.truncated_files:
        notes.append(f"{name} ends early (a truncated gzip file): its complete lines were read")
    if records.other_models:
        notes.append(f"{records.other_models} record(s) of other models were skipped")
    for version, n in sorted(records.other_versions.items()):
        notes.append(f"{n} record(s) of version {version} were skipped (the report is about the running version)")
    if records.newer_format:
        notes.append(f"{records.newer_format} record(s) written by a newer gitops-ml were skipped: upgrade gitops-ml to read them")
    if records.older_format:
        notes.append(f"{records.older_format} record(s) come from a gitops-ml that did not capture refusals by the input schema: the refused share undercounts")
    if records.outside_window:
        notes.append(f"{records.outside_window} record(s) of the version lie outside the window (--since/--until)")
    for key, values in sorted(records.values.items()):
        if values.missing:
            where = key.removeprefix("output:")
            notes.append(f"{values.missing} value(s) at {where} were missing or not of the profiled type")
    return notes

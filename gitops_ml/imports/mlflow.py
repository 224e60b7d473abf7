"""`import mlflow`: an MLflow model (a directory, or a runs:/ or models:/ URI resolved through the
tracking server) as models/<name>/ with a built-in scorer: the artifact, model.yaml (registered
version, metrics, run lineage), manifest.yaml, requirements pinned as MLflow recorded them, schema
and sample from the signature and input example, and a deployment per environment.

The scorer is the lightest that serves the model as MLflow would: a pickled scikit-learn model or
an ONNX graph get their own built-in (the image needs no MLflow), anything else goes through
mlflow.pyfunc from a zip of the model directory, with mlflow-skinny instead of mlflow. Importing a
model that already exists is a bump of it (edits.plans.plan_bump), delivered like `bump`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from gitops_ml.adapters import mlflow as tracking
from gitops_ml.atomic import write_atomic
from gitops_ml.build.requirements import check_requirement_line
from gitops_ml.edits.delivery import Delivery, EditResult
from gitops_ml.edits.plans import BumpRequest, plan_bump
from gitops_ml.errors import EditError, GitopsMlError, LoadError, UsageError, ValidationError
from gitops_ml.render import service as render_service
from gitops_ml.repo.editing import DirectorySnapshot
from gitops_ml.repo.handle import Repository
from gitops_ml.serving.builtins.catalog import requirement_name
from gitops_ml.serving.builtins.mlmodel import MLModel, read_mlmodel
from gitops_ml.serving.model_schema import schema_from_mlmodel
from gitops_ml.types import DEPLOYMENTS_DIR, MODELS_DIR
from gitops_ml.validate.rules import validate_repository

MODEL_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ZIP_NAME = "model.mlflow.zip"
FIRST_VERSION = "1.0.0"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member times: the same model directory zips to the same bytes (and sha256)
MLFLOW_DISTRIBUTIONS = {"mlflow", "mlflow-skinny"}
SCORERS = ("auto", "mlflow")

Fetch = Callable[[str, Path], tracking.RemoteModel]
Deliver = Callable[[Any], EditResult]


@dataclass(frozen=True)
class ImportRequest:
    repo: Repository
    source: str
    model: str
    scorer: str = "auto"  # auto: the lightest built-in that serves it; mlflow: always mlflow.pyfunc
    description: str = ""


@dataclass
class ImportResult:
    """What the import did: a new model (files written) or a bump (the edit's result)."""

    model: str
    version: str
    builtin: str
    source: str
    created: bool
    written: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    edit: EditResult | None = None


@dataclass(frozen=True)
class Choice:
    """The built-in chosen for a model, its artifact file (in the MLflow directory, or the zip) and why."""

    builtin: str
    artifact_name: str
    member: str  # the file of the MLflow directory that is the artifact; "" for the zip of all of it
    framework: tuple[str, str]
    reason: str


# --- reading the source ------------------------------------------------------------------------


def fetch_source(source: str, work: Path, fetch: Fetch) -> tuple[Path, tracking.RemoteModel | None]:
    """The MLflow model directory of `source` (downloaded into `work` for a URI) and what the server said."""
    if tracking.is_remote(source):
        remote = fetch(source, work)
        return remote.directory, remote
    path = Path(source)
    if not path.exists():
        raise UsageError(f"{source} does not exist", hint="SOURCE is an MLflow model directory, or a runs:/ or models:/ URI")
    if not path.is_dir() or not (path / "MLmodel").is_file():
        raise UsageError(f"{source} is not an MLflow model directory (no MLmodel file in it)",
                         hint="point at the directory mlflow.<flavour>.save_model wrote, or at its runs:/ or models:/ URI")
    return path, None


def choose_scorer(info: MLModel, source: str, scorer: str) -> Choice:
    """The built-in for the model: LoadError naming the source when none can load it."""
    flavors = info.flavors
    pyfunc = flavors.get("python_function")
    if pyfunc is None:
        raise LoadError(f"the MLflow model at {source} has no python_function flavour (flavours: {', '.join(sorted(flavors)) or 'none'}): "
                        "neither mlflow.pyfunc nor a built-in can load it",
                        hint="log the model with a flavour that has a pyfunc loader (mlflow.sklearn, mlflow.onnx, mlflow.pyfunc...), or write a score.py")
    sklearn = flavors.get("sklearn") or {}
    onnx = flavors.get("onnx") or {}
    predict_fn = str(pyfunc.get("predict_fn") or "predict")
    if scorer == "auto" and not info.params:
        if sklearn and sklearn.get("serialization_format", "cloudpickle") in ("pickle", "cloudpickle") and predict_fn == "predict" \
                and sklearn.get("pickled_model") and not sklearn.get("code") and not pyfunc.get("code"):
            return Choice("sklearn", "model.pkl", str(sklearn["pickled_model"]), ("scikit-learn", str(sklearn.get("sklearn_version") or "")),
                          "a pickled scikit-learn model: served by the sklearn built-in, without MLflow in the image")
        if onnx and onnx.get("data") and not pyfunc.get("code"):
            return Choice("onnx", "model.onnx", str(onnx["data"]), ("onnx", str(onnx.get("onnx_version") or "")),
                          "an ONNX graph: served by onnxruntime, without MLflow in the image")
    framework = next((name for name in flavors if name != "python_function"), "python_function")
    return Choice("mlflow", ZIP_NAME, "", ("mlflow", info.mlflow_version),
                  f"flavour {framework}: served through mlflow.pyfunc (mlflow-skinny in the image, not the MLflow server)")


def zip_directory(directory: Path) -> bytes:
    """The MLflow model directory as a zip with fixed member order and times (reproducible bytes)."""
    import io  # noqa: PLC0415

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return buffer.getvalue()


def requirements_for(info: MLModel, choice: Choice, source: str) -> str:
    """requirements.txt for the image: MLflow's recorded pins, without MLflow for a built-in that does
    not need it, and with mlflow-skinny (same version) instead of mlflow for mlflow.pyfunc."""
    lines = _recorded_lines(info)
    if not lines:
        raise LoadError(f"the MLflow model at {source} records no requirements (no requirements.txt, no pip section in conda.yaml)",
                        hint="log the model with pip_requirements=... so the image gets its packages")
    out = [f"# pinned as MLflow recorded them for {source}"]
    for number, line in enumerate(lines, start=1):
        finding = check_requirement_line(line, _location(source, number))
        if finding is not None:
            raise LoadError(f"the MLflow model's requirements.txt line {number}: {finding.message}", hint=finding.hint)
        name = requirement_name(line)
        if name in MLFLOW_DISTRIBUTIONS:
            if choice.builtin != "mlflow":
                out.append(f"# {line}: not needed, the {choice.builtin} built-in loads {choice.artifact_name} without MLflow")
                continue
            if name == "mlflow":
                line = "mlflow-skinny" + line[len(re.match(r"\s*mlflow", line).group(0)):]  # type: ignore[union-attr]
                out.append("# mlflow -> mlflow-skinny: mlflow.pyfunc without the tracking server and UI")
        out.append(line)
    names = {requirement_name(line) for line in out}
    if choice.builtin == "mlflow" and not names & MLFLOW_DISTRIBUTIONS:
        out.append(f"mlflow-skinny=={info.mlflow_version}" if info.mlflow_version else "mlflow-skinny>=2.12")
    return "\n".join(out) + "\n"


def _location(source: str, number: int) -> Any:
    from gitops_ml.errors import Location  # noqa: PLC0415

    return Location(f"{source}/requirements.txt", number, 1)


def _recorded_lines(info: MLModel) -> list[str]:
    if info.requirements.strip():
        return [line.strip() for line in info.requirements.splitlines() if line.strip() and not line.strip().startswith("#")]
    if info.conda.strip():
        import yaml  # noqa: PLC0415

        doc = yaml.safe_load(info.conda) or {}
        return [str(e).strip() for dep in doc.get("dependencies") or [] if isinstance(dep, dict) for e in dep.get("pip") or []]
    return []


def _python(info: MLModel) -> str:
    match = re.match(r"^(3\.\d+)", info.python_version)
    return match.group(1) if match else "3.11"


def _clean(value: Any) -> Any:
    """JSON has no NaN: a missing value of the input example becomes null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _trained_at(info: MLModel) -> str:
    try:
        when = dt.datetime.fromisoformat(info.created.replace(" ", "T")) if info.created else None
    except ValueError:
        return ""
    return when.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ") if when else ""


# --- writing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFiles:
    """The files of models/<name>/ an import writes (relative to it) and model.yaml's facts."""

    files: Mapping[str, bytes]
    lineage: Mapping[str, str]
    metrics: Mapping[str, float]
    choice: Choice
    notes: tuple[str, ...]


def model_files(info: MLModel, directory: Path, choice: Choice, source: str, remote: tracking.RemoteModel | None) -> ModelFiles:
    learnt = schema_from_mlmodel(info, source)
    artifact = zip_directory(directory) if not choice.member else (directory / choice.member).read_bytes()
    files: dict[str, bytes] = {
        choice.artifact_name: artifact,
        "requirements.txt": requirements_for(info, choice, source).encode(),
        "schema.json": (json.dumps(learnt.schema, indent=2) + "\n").encode(),
    }
    if learnt.sample is not None:
        files["sample.json"] = (json.dumps(_clean(learnt.sample), indent=2) + "\n").encode()
    lineage = {"source": source}
    run_id = (remote.run_id if remote else "") or info.run_id
    if run_id:
        lineage["runId"] = run_id
    if remote is not None and remote.registered_version:
        lineage["registryVersion"] = f"{remote.registered_name}/{remote.registered_version}"
    trained = _trained_at(info)
    if trained:
        lineage["trainedAt"] = trained
    metrics = {k: v for k, v in (remote.metrics if remote else {}).items() if math.isfinite(v) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", k)}
    return ModelFiles(files, lineage, metrics, choice, (choice.reason, *learnt.notes))


def manifest_text(choice: Choice, python: str, has_sample: bool) -> str:
    lines = [
        "# yaml-language-server: $schema=../../.gitops-ml/schemas/manifest.schema.json",
        "# Written by `gitops-ml import mlflow`: a built-in scorer loads the artifact, no score.py.",
        "apiVersion: gitops-ml.dev/v1",
        "kind: Manifest",
        "scoring:",
        f"  builtin: {choice.builtin}",
        "dependencies:",
        "  requirements: requirements.txt",
        f'python: "{python}"',
        "schema: schema.json",
    ]
    if has_sample:
        lines.append("sample: sample.json")
    return "\n".join(lines) + "\n"


def model_text(name: str, version: str, files: ModelFiles, description: str) -> str:
    framework = {"sklearn": "scikit-learn", "onnx": "onnx"}.get(files.choice.builtin, "mlflow")
    sha = hashlib.sha256(files.files[files.choice.artifact_name]).hexdigest()
    lines = [
        "# yaml-language-server: $schema=../../.gitops-ml/schemas/model.schema.json",
        "apiVersion: gitops-ml.dev/v1",
        "kind: Model",
        f"name: {name}",
        f"version: {version}",
    ]
    if description:
        lines.append(f"description: {json.dumps(description)}")
    lines += ["framework:", f"  name: {framework}"]
    if files.choice.framework[1]:
        lines.append(f'  version: "{files.choice.framework[1]}"')
    lines += ["artifact:", f"  uri: {files.choice.artifact_name}", f"  sha256: {sha}"]
    if files.metrics:
        lines.append("metrics:")
        lines += [f"  {k}: {json.dumps(v)}" for k, v in sorted(files.metrics.items())]
    lines.append("lineage:")
    lines += [f"  {k}: {json.dumps(v)}" for k, v in files.lineage.items()]
    return "\n".join(lines) + "\n"


def deployment_text(name: str, pin: str) -> str:
    return "\n".join([
        "# yaml-language-server: $schema=../../.gitops-ml/schemas/deployment.schema.json",
        "apiVersion: gitops-ml.dev/v1",
        "kind: Deployment",
        f"model: {pin}",
        "",
    ])


# --- the use case ------------------------------------------------------------------------------------


def import_mlflow(request: ImportRequest, *, fetch: Fetch = tracking.fetch_model, deliver: Deliver | None = None) -> ImportResult:
    """Import the model: write a new model directory, or (when it exists) plan a bump and hand it to
    `deliver` (the CLI's run_edit with --branch/--push/--pr). Nothing is left half-written."""
    repo = request.repo
    if not MODEL_NAME.fullmatch(request.model) or len(request.model) > 63:
        raise UsageError(f"--model {request.model!r} is not a model name (a DNS-1123 label: lower-case letters, digits, '-')")
    if request.scorer not in SCORERS:
        raise UsageError(f"--scorer {request.scorer!r}: choose one of {', '.join(SCORERS)}")
    config = repo.config
    if config is None:
        raise UsageError(f"{repo.root} has no gitops-ml.yaml")
    with tempfile.TemporaryDirectory(prefix="gitops-ml-import-") as tmp:
        directory, remote = fetch_source(request.source, Path(tmp), fetch)
        info = read_mlmodel(directory)
        choice = choose_scorer(info, request.source, request.scorer)
        files = model_files(info, directory, choice, request.source, remote)
    model_dir = repo.root / MODELS_DIR / request.model
    if (model_dir / "model.yaml").is_file():
        return _bump(request, info, files, deliver)
    return _create(request, info, files)


def _create(request: ImportRequest, info: MLModel, files: ModelFiles) -> ImportResult:
    repo = request.repo
    config = repo.config
    assert config is not None
    rel_dir = f"{MODELS_DIR}/{request.model}"
    if (repo.root / rel_dir).exists():
        raise EditError(f"{rel_dir} exists but has no model.yaml", hint="remove it, or import under another --model name")
    written: dict[str, bytes] = {f"{rel_dir}/{name}": data for name, data in files.files.items()}
    written[f"{rel_dir}/manifest.yaml"] = manifest_text(files.choice, _python(info), "sample.json" in files.files).encode()
    written[f"{rel_dir}/model.yaml"] = model_text(request.model, FIRST_VERSION, files, request.description).encode()
    environments = list(config.environments)
    for index, environment in enumerate(environments):
        path = f"{DEPLOYMENTS_DIR}/{environment}/{request.model}.yaml"
        if (repo.root / path).exists():
            continue
        # the first environment tracks the newest version; the others are pinned, so promotion stays a pull request
        pin = request.model if index == 0 else f"{request.model}@{FIRST_VERSION}"
        written[path] = deployment_text(request.model, pin).encode()
    snapshots = [DirectorySnapshot.take(repo.root / DEPLOYMENTS_DIR)] if (repo.root / DEPLOYMENTS_DIR).is_dir() else []
    render = DirectorySnapshot.take(repo.render_dir) if repo.renders_committed else None
    created_dirs = [repo.root / rel_dir] + ([] if (repo.root / DEPLOYMENTS_DIR).is_dir() else [repo.root / DEPLOYMENTS_DIR])
    try:
        for path, data in written.items():
            write_atomic(repo.root / path, data)
        repo.refresh()
        report = validate_repository(repo)
        errors = [f for f in report.findings if f.severity == "error"]
        if errors:
            raise ValidationError(errors, f"the imported model does not validate ({len(errors)} error(s)); nothing was kept")
        rendered: list[str] = []
        if render is not None:
            result = render_service.render_repository(render_service.RenderRequest(repo))
            if result.written is not None:
                rendered = [f"{repo.render_root}/{p}" for p in [*result.written.written, *result.written.removed]]
    except BaseException:
        for directory in created_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        for snapshot in snapshots:
            snapshot.restore()
        if render is not None:
            render.restore()
        repo.refresh()
        raise
    return ImportResult(request.model, FIRST_VERSION, files.choice.builtin, request.source, True, [*written, *rendered], list(files.notes))


def _bump(request: ImportRequest, info: MLModel, files: ModelFiles, deliver: Deliver | None) -> ImportResult:
    repo = request.repo
    rel_dir = f"{MODELS_DIR}/{request.model}"
    model_dir = repo.root / rel_dir
    current = _lineage(model_dir / "model.yaml")
    if current.get("source") == request.source and request.source.startswith("models:/") and re.search(r"/\d+$", request.source):
        raise EditError(f"{rel_dir} already holds {request.source}", hint="import a newer registered version (models:/NAME/VERSION)")
    old, new = _registry_version(current.get("registryVersion", "")), _registry_version(files.lineage.get("registryVersion", ""))
    if old is not None and new is not None and new <= old:
        raise EditError(f"{request.source} is registered version {new}, not newer than the imported {old} ({current['registryVersion']})",
                        hint="import a newer version; to go back to an older one, roll back the deployment (`gitops-ml rollback`)")
    _refuse_dirty(repo, rel_dir)
    snapshot = DirectorySnapshot.take(model_dir)
    manifest = (model_dir / "manifest.yaml").read_bytes()
    try:
        for name in ("requirements.txt", "schema.json", "sample.json"):
            if name in files.files:
                write_atomic(model_dir / name, files.files[name])
        write_atomic(model_dir / files.choice.artifact_name, files.files[files.choice.artifact_name])
        if _builtin_of(manifest) != files.choice.builtin:  # the new version needs another scorer
            has_sample = "sample.json" in files.files or (model_dir / "sample.json").is_file()
            write_atomic(model_dir / "manifest.yaml", manifest_text(files.choice, _python(info), has_sample))
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(dict(files.metrics), fh)
            metrics_file = Path(fh.name)
        try:
            plan = plan_bump(BumpRequest(repo, request.model, artifact=files.choice.artifact_name, metrics_file=metrics_file if files.metrics else None,
                                         lineage=dict(files.lineage)))
        finally:
            metrics_file.unlink(missing_ok=True)
        if deliver is None:
            from gitops_ml.edits.delivery import deliver as deliver_plan  # noqa: PLC0415

            result = deliver_plan(plan, repo, Delivery())
        else:
            result = deliver(plan)
    except BaseException:
        snapshot.restore()
        repo.refresh()
        raise
    return ImportResult(request.model, str(plan.new_version), files.choice.builtin, request.source, False, result.written, list(files.notes), result)


def _builtin_of(manifest: bytes) -> str:
    match = re.search(rb"^\s+builtin:\s*(\S+)", manifest, re.M)
    return match.group(1).decode() if match else ""


def _lineage(path: Path) -> dict[str, str]:
    import yaml  # noqa: PLC0415

    try:
        doc = yaml.safe_load(path.read_bytes()) or {}
    except yaml.YAMLError:
        return {}
    lineage = doc.get("lineage") if isinstance(doc, dict) else None
    return {str(k): str(v) for k, v in (lineage or {}).items()}


def _registry_version(text: str) -> int | None:
    _, _, number = text.rpartition("/")
    return int(number) if number.isdigit() else None


def _refuse_dirty(repo: Repository, rel_dir: str) -> None:
    from gitops_ml.adapters.gitwrite import GitWriter  # noqa: PLC0415

    try:
        writer = GitWriter(repo.checkout())
    except GitopsMlError:
        return
    dirty = writer.dirty([rel_dir])
    if dirty:
        raise EditError(f"uncommitted changes in {', '.join(dirty[:5])}; the import would replace them", hint="commit or stash them first")


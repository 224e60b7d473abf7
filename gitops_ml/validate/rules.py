"""Cross-file rules over a loaded tree, after each document passed its JSON Schema; they build the
typed specs (`specs`) of a tree without errors.

Every finding is collected (never only the first) and located to file:line:col. Nothing here prints or writes.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import math
import posixpath
import re
import sys
import tokenize
from typing import Iterable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError as BadSchema

from gitops_ml.errors import LoadError, Location, ValidationError
from gitops_ml.repo.handle import Repository
from gitops_ml.repo.loading import Document, RepositoryTree, load_tree, parse_yaml
from gitops_ml.repo.sources import FileSource, ModelSubset
from gitops_ml.serving.contract import score_contract_problems
from gitops_ml.serving.settings import memory_limit_bytes, memory_problem, quantity_value
from gitops_ml.types import (
    DEPLOYMENTS_DIR,
    REPOSITORY_FILE,
    DeploymentSpec,
    Engine,
    Finding,
    Kind,
    ManifestSpec,
    ModelName,
    ModelSpec,
    RepositorySpec,
)
from gitops_ml.validate import locks
from gitops_ml.validate.builtins import check_builtin
from gitops_ml.validate.rollout import deployment_findings
from gitops_ml.validate.schema import kind_findings, schema_findings
from gitops_ml.validate.specs import ModelEntry, Report, Specs

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


# --- cross-file rules ----------------------------------------------------------------------------


def _inside(model_dir: str, rel: str) -> str | None:
    """Normalised repository path of rel inside model_dir, or None when it escapes."""
    if rel.startswith("/") or "\\" in rel:
        return None
    joined = posixpath.normpath(posixpath.join(model_dir, rel))
    if joined != model_dir and not joined.startswith(model_dir + "/"):
        return None
    return joined


def check_models(tree: RepositoryTree, source: FileSource, out: list[Finding], *, deep: bool = True) -> dict[ModelName, ModelEntry]:
    """Each model's files checked; `deep=False` leaves out what only building and serving depend on (the
    built-in's artifact, the sample against the schema, score.py's contract): a plan does not."""
    entries: dict[ModelName, ModelEntry] = {}
    for name, files in sorted(tree.models.items()):
        ok = True
        if not DNS_LABEL.match(name) or len(name) > 63:
            out.append(Finding(Location(files.dir), f"model directory name {name!r} is not a DNS-1123 label (lower-case letters, digits, '-')"))
            ok = False
        model_doc, manifest_doc = files.model, files.manifest
        for doc, kind in ((model_doc, Kind.MODEL), (manifest_doc, Kind.MANIFEST)):
            if doc is None:
                ok = False
                continue
            found = kind_findings(doc, kind) or schema_findings(doc, kind)
            out.extend(found)
            ok = ok and not found
        if not ok or model_doc is None or manifest_doc is None:
            continue
        if model_doc.data["name"] != name:
            out.append(Finding(model_doc.locate(["name"]), f"model name {model_doc.data['name']!r} must equal its directory name {name!r}"))
            continue
        for link, target in source.links_outside(files.dir):
            if source.is_file(link) or source.is_dir(link):
                out.append(Finding(Location(link), f"symbolic link to {target}, outside the model directory {files.dir}/: a model version is its directory's own files"))
            else:
                out.append(Finding(Location(link), f"symbolic link to {target} leads to no file (a loop of links, or a missing target): a model version is its directory's own files"))
            ok = False
        for metric, value in (model_doc.data.get("metrics") or {}).items():
            if isinstance(value, float) and not math.isfinite(value):
                out.append(Finding(model_doc.locate(["metrics", metric]), f"metrics.{metric}: {value} is not a finite number (JSON has no NaN or Infinity)"))
                ok = False
        spec = ModelSpec.from_doc(model_doc.data)
        manifest = ManifestSpec.from_doc(manifest_doc.data)
        for field_path, rel in manifest.referenced_paths().items():
            json_path: list[str | int] = [int(p) if p.isdigit() else p for p in field_path.split(".")]
            full = _inside(files.dir, rel)
            if full is None:
                out.append(Finding(manifest_doc.locate(json_path), f"path {rel!r} escapes the model directory {files.dir}/"))
                ok = False
            elif not (source.is_file(full) or (field_path.startswith("include.") and source.is_dir(full))):
                out.append(Finding(manifest_doc.locate(json_path), f"{field_path} refers to {full}, which does not exist"))
                ok = False
        if spec.artifact.scheme == "path":
            full = _inside(files.dir, spec.artifact.uri)
            if full is None:
                out.append(Finding(model_doc.locate(["artifact", "uri"]), f"artifact path {spec.artifact.uri!r} escapes the model directory {files.dir}/"))
                ok = False
            elif not source.is_file(full):
                out.append(Finding(model_doc.locate(["artifact", "uri"]), f"artifact {full} does not exist"))
                ok = False
            else:
                digest = hashlib.sha256(source.read(full)).hexdigest()
                if digest != spec.artifact.sha256:
                    out.append(Finding(model_doc.locate(["artifact", "sha256"]), f"sha256 of {full} is {digest}, not {spec.artifact.sha256}"))
                    ok = False
        if spec.reference:
            full = _inside(files.dir, spec.reference)
            if full is None:
                out.append(Finding(model_doc.locate(["reference"]), f"reference profile {spec.reference!r} escapes the model directory {files.dir}/"))
                ok = False
            elif not source.is_file(full):
                out.append(Finding(model_doc.locate(["reference"]), f"reference profile {full} does not exist", hint=f"write it with `gitops-ml profile DATA --model {name}`"))
                ok = False
        if ok and deep and manifest.builtin:
            ok = check_builtin(manifest_doc, files.dir, spec, manifest, source.read, out)
        if ok and deep and manifest.schema and manifest.sample:
            ok = _check_sample(tree, files.dir, manifest, out)
        if ok and deep and manifest.script:
            ok = _check_contract(tree, files.dir, manifest, out)
        if ok:
            entries[ModelName(name)] = ModelEntry(spec, manifest, files.dir)
    return entries


def _check_lock(source: FileSource, model_dir: str, manifest: ManifestSpec, manifest_doc: Document, model: str) -> list[Finding]:
    """A lock that parses and is not older than the requirements it locks (see validate.locks)."""
    lock_path = f"{model_dir}/{posixpath.normpath(manifest.lock)}"
    try:
        lock, found = locks.parse_lock(lock_path, source.read(lock_path).decode("utf-8"))
    except UnicodeDecodeError:
        return [Finding(Location(lock_path), "not UTF-8 text: a lock is a requirements file")]
    if lock is None:
        return found
    inputs: list[tuple[Location, str]] = []
    if manifest.requirements:
        req_path = f"{model_dir}/{posixpath.normpath(manifest.requirements)}"
        try:
            text = source.read(req_path).decode("utf-8")
        except UnicodeDecodeError:
            return [Finding(Location(req_path), "not UTF-8 text")]
        inputs = [(Location(req_path, number, 1), line) for number, line in locks.requirement_lines(text)]
    elif manifest.conda:
        conda_path = f"{model_dir}/{posixpath.normpath(manifest.conda)}"
        try:
            doc = parse_yaml(conda_path, source.read(conda_path))
        except LoadError as exc:
            return [Finding(exc.location or Location(conda_path), exc.message)]
        for i, dep in enumerate((doc.data or {}).get("dependencies") or [] if isinstance(doc.data, dict) else []):
            if isinstance(dep, dict) and isinstance(dep.get("pip"), list):
                inputs += [(doc.locate(["dependencies", i, "pip", j]), str(entry).strip()) for j, entry in enumerate(dep["pip"])]
    if manifest.builtin:
        # the built-in scorer's loader is locked with the model's own requirements (build/requirements.py)
        from gitops_ml.serving.builtins.catalog import builtin_requirements  # noqa: PLC0415

        where = manifest_doc.locate(["scoring", "builtin"])
        inputs += [(where, line) for line in builtin_requirements(manifest.builtin, tuple(line for _, line in inputs))]
    return locks.stale_findings(lock, inputs, model=model, python=manifest.python, python_at=manifest_doc.locate(["python"]))


def _check_sample(tree: RepositoryTree, model_dir: str, manifest: ManifestSpec, out: list[Finding]) -> bool:
    try:
        schema_doc = tree.read_document(f"{model_dir}/{manifest.schema}", json_doc=True)
        sample_doc = tree.read_document(f"{model_dir}/{manifest.sample}", json_doc=True)
    except LoadError as exc:
        out.append(Finding(exc.location or Location(model_dir), exc.message))
        return False
    # Checking a schema against the 2020-12 metaschema costs ~3 ms; a schema that is broken enough
    # to matter fails while validating the sample, and only then is the metaschema asked why.
    try:
        if not isinstance(schema_doc.data, (dict, bool)):
            raise BadSchema(f"{schema_doc.data!r} is not of type 'object', 'boolean'")
        validator = Draft202012Validator(schema_doc.data, format_checker=Draft202012Validator.FORMAT_CHECKER)
        errors = list(validator.iter_errors(sample_doc.data))
    except Exception:  # noqa: BLE001 - an invalid schema makes jsonschema fail in many ways
        try:
            Draft202012Validator.check_schema(schema_doc.data)
        except BadSchema as exc:
            out.append(Finding(schema_doc.locate(list(exc.absolute_path)), f"not a valid JSON Schema: {exc.message}"))
        else:
            out.append(Finding(schema_doc.locate(), "not a usable JSON Schema"))
        return False
    for error in errors[:20]:
        path = list(error.absolute_path)
        where = ".".join(map(str, path)) or "sample"
        out.append(Finding(sample_doc.locate(path), f"sample does not match {model_dir}/{manifest.schema}: {where}: {error.message[:200]}"))
    return not errors


def _check_contract(tree: RepositoryTree, model_dir: str, manifest: ManifestSpec, out: list[Finding]) -> bool:
    """score.py as the server will call it: init() with no argument, run() with what the schema decodes to.

    Read with `ast`, never imported (validate runs on untrusted pull requests); the server checks the
    same rules on the imported module at start-up.
    """
    script = f"{model_dir}/{manifest.script}"
    input_names: list[str] = []
    if manifest.schema:
        try:
            schema = tree.read_document(f"{model_dir}/{manifest.schema}", json_doc=True).data
        except LoadError:
            schema = None  # reported by the sample check, or by the build
        if isinstance(schema, dict) and isinstance(schema.get("properties"), dict):
            input_names = list(schema["properties"])
    raw = tree.source.read(script)
    try:  # as Python reads a source file: a BOM or a coding cookie names the encoding, else UTF-8
        source = raw.decode(tokenize.detect_encoding(io.BytesIO(raw).readline)[0])
    except (SyntaxError, LookupError, UnicodeDecodeError) as exc:
        out.append(Finding(Location(script), f"not readable as Python source: {exc}"))
        return False
    problems = score_contract_problems(source, input_names, batch=manifest.batch.enabled)
    if manifest.python and _newer_than_this_python(manifest.python):
        # this Python's grammar cannot judge syntax of a newer one: the image's interpreter will
        problems = [p for p in problems if not p.message.startswith("Python syntax error")]
    for problem in problems:
        out.append(Finding(Location(script, problem.line, problem.col), problem.message, hint=problem.hint))
    return not problems


def _quantity_findings(doc: Document, spec: DeploymentSpec) -> list[Finding]:
    """Quantities Kubernetes would refuse: one that is not a quantity (the schema's pattern is loose),
    and a request above its limit."""
    out: list[Finding] = []
    for kind in ("cpu", "memory"):
        values: dict[str, float] = {}
        for where, given in (("requests", spec.resource_requests), ("limits", spec.resource_limits)):
            if kind not in given:
                continue
            value = quantity_value(given[kind])
            if value is None:
                out.append(Finding(doc.locate(["resources", where, kind]), f"resources.{where}.{kind}: {given[kind]!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 1Gi)"))
            else:
                values[where] = value
        if len(values) == 2 and values["requests"] > values["limits"]:
            out.append(Finding(doc.locate(["resources", "requests", kind]),
                               f"resources.requests.{kind} ({spec.resource_requests[kind]}) is above resources.limits.{kind} "
                               f"({spec.resource_limits[kind]}): Kubernetes refuses such a pod"))
    return out


def _newer_than_this_python(version: str) -> bool:
    try:
        return tuple(int(p) for p in version.split(".")[:2]) > sys.version_info[:2]
    except ValueError:
        return False


def _check_deployments(
    tree: RepositoryTree, repo: RepositorySpec | None, models: dict[ModelName, ModelEntry], out: list[Finding]
) -> tuple[list[DeploymentSpec], dict[tuple[str, str], str]]:
    specs: list[DeploymentSpec] = []
    seen: dict[tuple[str, str], str] = {}
    for dep in tree.deployments:
        doc = dep.document
        found = kind_findings(doc, Kind.DEPLOYMENT) or schema_findings(doc, Kind.DEPLOYMENT)
        if found:
            out.extend(found)
            continue
        spec = DeploymentSpec.from_doc(dep.environment, doc.data)
        ok = True
        if not DNS_LABEL.match(dep.environment):
            out.append(Finding(Location(f"{DEPLOYMENTS_DIR}/{dep.environment}"), f"environment name {dep.environment!r} is not a DNS-1123 label"))
            ok = False
        elif repo is not None and dep.environment not in repo.environments:
            declared = ", ".join(sorted(repo.environments)) or "none"
            close = difflib.get_close_matches(dep.environment, list(repo.environments), n=1)
            out.append(
                Finding(
                    doc.locate(),
                    f"environment {dep.environment!r} is not declared in {REPOSITORY_FILE} (declared: {declared})",
                    hint=f"did you mean {close[0]!r}?" if close else f"add it under `environments:` in {REPOSITORY_FILE}",
                )
            )
            ok = False
        if spec.model not in tree.models:
            close = difflib.get_close_matches(spec.model, list(tree.models), n=1)
            out.append(
                Finding(
                    doc.locate(["model"]),
                    f"model {spec.model!r} does not exist (no models/{spec.model}/)" + (f"; did you mean {close[0]!r}?" if close else ""),
                )
            )
            ok = False
        elif spec.model != dep.model_file:
            out.append(Finding(doc.locate(["model"]), f"{doc.path} deploys model {spec.model!r}; the file must be named {spec.model}.yaml"))
            ok = False
        elif spec.pin.version is not None and spec.model in models:
            current = models[spec.model].spec.version
            if spec.pin.version > current:
                out.append(Finding(doc.locate(["model"]), f"pinned version {spec.pin.version} is newer than the newest version of {spec.model} ({current})"))
                ok = False
        key = (dep.environment, spec.model)
        if key in seen:
            out.append(Finding(doc.locate(["model"]), f"model {spec.model!r} is already deployed to {dep.environment!r} by {seen[key]}"))
            ok = False
        else:
            seen[key] = doc.path
        auto = spec.autoscaling
        if auto.enabled and auto.min_replicas > auto.max_replicas:
            out.append(Finding(doc.locate(["autoscaling", "minReplicas"]), f"autoscaling.minReplicas ({auto.min_replicas}) is above maxReplicas ({auto.max_replicas})"))
            ok = False
        found = _quantity_findings(doc, spec)
        if found:
            out.extend(found)
            ok = False
        memory = "" if found else memory_problem(memory_limit_bytes(spec), spec.requests.max_body_bytes)
        if memory:
            out.append(Finding(doc.locate(["resources", "limits", "memory"]), memory))
            ok = False
        latency = spec.monitoring.alerts.latency_p99_seconds
        if latency is not None and latency >= spec.requests.timeout:
            # requests are cut off at the timeout: their latency never exceeds it, so neither does the p99
            out.append(
                Finding(
                    doc.locate(["monitoring", "alerts", "latencyP99Seconds"]),
                    f"monitoring.alerts.latencyP99Seconds ({latency:g} s) is not below requests.timeoutSeconds ({spec.requests.timeout:g} s): "
                    "requests are cut off at the timeout, so the p99 latency alert could never fire",
                    hint="leave it unset (80 % of the timeout) or set it below the timeout; timeouts themselves count in monitoring.alerts.errorRatio",
                )
            )
            ok = False
        if spec.exposure and spec.exposure.type == "httproute" and not spec.exposure.gateway_name:
            out.append(Finding(doc.locate(["exposure"]), "exposure.type httproute needs exposure.gateway.name"))
            ok = False
        environment = repo.environments.get(spec.environment) if repo is not None else None
        entry = models.get(spec.model)
        found = deployment_findings(doc, spec, environment, entry.spec.version if entry is not None else None)
        if found:
            out.extend(found)
            ok = False
        if ok:
            specs.append(spec)
    return specs, seen


def _check_repository(doc: Document, repo: RepositorySpec) -> list[Finding]:
    return [
        Finding(doc.locate(["environments", name, "applicationSet"]), f"environment {name!r}: applicationSet is an Argo CD setting; this environment's engine is {env.engine.value}")
        for name, env in sorted(repo.environments.items())
        if env.application_set and env.engine is not Engine.ARGOCD
    ]


def older_pins(specs: Specs) -> list[DeploymentSpec]:
    """Deployments pinned to a version other than the working tree's: only history can vouch for those."""
    return [d for d in specs.deployments if d.pin.version is not None and d.pin.version != specs.models[d.model].spec.version]


def validate_tree(tree: RepositoryTree, *, deep: bool = True) -> Report:
    """Schema and cross-file findings of a loaded tree; specs when clean. `deep=False` is for readers
    of the plan only (status): locks, samples and score.py are not read."""
    out = list(tree.findings)
    repo: RepositorySpec | None = None
    if tree.repository is not None:
        found = kind_findings(tree.repository, Kind.REPOSITORY) or schema_findings(tree.repository, Kind.REPOSITORY)
        out.extend(found)
        if not found:
            repo = RepositorySpec.from_doc(tree.repository.data)
            out.extend(_check_repository(tree.repository, repo))
    models = check_models(tree, tree.source, out, deep=deep)
    deployments, files = _check_deployments(tree, repo, models, out)
    n_files = (1 if tree.repository else 0) + sum(bool(m.model) + bool(m.manifest) for m in tree.models.values()) + len(tree.deployments)
    ok = not any(f.severity == "error" for f in out)
    # a lock older than its requirements is an error, yet the specs stand: `gitops-ml lock` needs them to write a new one
    for name, entry in models.items() if deep else ():
        manifest_doc = tree.models[name].manifest
        if entry.manifest.lock and manifest_doc is not None:
            out.extend(_check_lock(tree.source, entry.dir, entry.manifest, manifest_doc, name))
    report = Report(sorted(set(out)), n_files)
    if ok and repo is not None:
        report.specs = Specs(repo, models, sorted(deployments, key=lambda d: (d.environment, d.model)), {k: v for k, v in files.items()})
    return report


def validate_source(source: FileSource) -> Report:
    return validate_tree(load_tree(source))


def validate_repository(repo: Repository, models: set[str] | None = None, *, deep: bool = True) -> Report:
    """Schema and cross-file findings of the working tree (only `models` and their deployment files
    when given), built once per repository handle however many stages ask."""
    if models is None:
        if not deep:
            return repo.remember((Report, "plan only"), lambda: validate_tree(repo.tree(), deep=False))
        return repo.remember(Report, lambda: validate_tree(repo.tree()))
    return repo.remember((Report, frozenset(models)), lambda: validate_tree(load_tree(ModelSubset(repo.worktree, models))))


def require_specs(repo: Repository, message: str, *, models: set[str] | None = None, deep: bool = True) -> Specs:
    """The typed specs of the working tree; ValidationError with every finding when it has errors.
    `message` may name the count of errors as {errors}."""
    report = validate_repository(repo, models, deep=deep)
    errors = [f for f in report.findings if f.severity == "error"]
    if errors or report.specs is None:
        raise ValidationError(errors or report.findings, message.format(errors=len(errors)))
    return report.specs


def iter_errors(findings: Iterable[Finding]) -> Iterable[Finding]:
    return (f for f in findings if f.severity == "error")

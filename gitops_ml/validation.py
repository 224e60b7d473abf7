"""Documents -> findings: JSON Schema, then cross-file rules, then version rules against a base.

Every finding is collected (never only the first) and located to file:line:col. When a tree has no
errors the typed specs are built for the stages after this one. Nothing here prints or writes.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from jsonschema import Draft202012Validator
from jsonschema import ValidationError as SchemaError
from jsonschema.exceptions import SchemaError as BadSchema

from gitops_ml import catalog
from gitops_ml.compat import schema_breaks
from gitops_ml.errors import LoadError, Location
from gitops_ml.loading import Document, RepositoryTree, load_tree
from gitops_ml.sources import FileSource
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
    Version,
)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class ModelEntry:
    """A model as the working tree (or a commit) has it: validated specs and where they live."""

    spec: ModelSpec
    manifest: ManifestSpec
    dir: str


@dataclass
class Specs:
    """The typed repository, built only from a tree without errors."""

    repository: RepositorySpec
    models: dict[ModelName, ModelEntry]
    deployments: list[DeploymentSpec]
    deployment_files: dict[tuple[str, str], str]  # (environment, model) -> path


@dataclass
class Report:
    """What validation found; `specs` is set when there are no errors."""

    findings: list[Finding] = field(default_factory=list)
    files: int = 0
    specs: Specs | None = None

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)


# --- schema findings ---------------------------------------------------------------------------


def _first_sentence(text: str) -> str:
    """The description up to its first full stop or semicolon ("e.g." and "i.e." are not full stops)."""
    return re.split(r"(?<!e\.g)(?<!i\.e)\. |; ", text, maxsplit=1)[0].rstrip(".")


def _describe(error: SchemaError) -> tuple[list[str | int], str, bool, str]:
    """(json path, message, point at key?, hint) for one jsonschema error."""
    path: list[str | int] = list(error.absolute_path)
    where = ".".join(str(p) for p in path) or "document"
    v = error.validator
    hint = ""
    if v == "additionalProperties":
        allowed = list((error.schema.get("properties") or {}).keys())
        extras = [k for k in error.instance if k not in allowed] if isinstance(error.instance, dict) else []
        key = extras[0] if extras else ""
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        if close:
            hint = f"did you mean {close[0]!r}?"
        msg = f"unknown field {key!r}" + (f" in {where}" if path else "")
        if close:
            msg += f"; did you mean {close[0]!r}?"
        elif allowed:
            msg += f" (allowed: {', '.join(allowed)})"
        return path + [key], msg, True, hint
    if v == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        name = missing[0] if missing else str(error.validator_value)
        return path, f"missing required field {name!r}" + (f" in {where}" if path else ""), bool(path), hint
    if v == "type":
        expected = error.validator_value
        expected_s = " or ".join(expected) if isinstance(expected, list) else expected
        got = type(error.instance).__name__
        got = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "dict": "mapping", "list": "list", "NoneType": "null"}.get(got, got)
        if expected_s == "string" and got in {"number", "integer", "boolean"}:
            hint = "quote the value so YAML reads it as a string"
        return path, f"{where}: expected {expected_s}, got {got} {error.instance!r}", False, hint
    if v == "pattern":
        desc = error.schema.get("description", "")
        return path, f"{where}: {error.instance!r} is not valid: {_first_sentence(desc) or 'must match ' + repr(error.validator_value)}", False, hint
    if v in ("enum", "const"):
        allowed = error.validator_value if v == "enum" else [error.validator_value]
        close = difflib.get_close_matches(str(error.instance), [str(a) for a in allowed], n=1)
        hint = f"did you mean {close[0]!r}?" if close else ""
        return path, f"{where}: {error.instance!r} is not one of {', '.join(repr(a) for a in allowed)}", False, hint
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return path, f"{where}: {error.instance!r} is out of range ({v} {error.validator_value})", False, hint
    if v == "not" and "required" in (error.validator_value or {}):
        return path, f"{where}: give only one of {', '.join(error.validator_value['required'])}", False, hint
    if v == "propertyNames":
        return path, f"{where}: invalid name {error.instance!r}: {_first_sentence(error.schema.get('description', '')) or error.message}", False, hint
    if v in ("oneOf", "anyOf") and error.context:
        best = min(error.context, key=lambda e: len(list(e.absolute_path)))
        return path, f"{where}: {best.message}", False, hint
    return path, f"{where}: {error.message}", False, hint


def schema_findings(doc: Document, kind: Kind) -> list[Finding]:
    """Every schema violation of one document, located."""
    if catalog.is_valid(kind, doc.data):
        return []
    validator = catalog.validator(kind)
    out = []
    for error in sorted(validator.iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))):
        path, message, at_key, hint = _describe(error)
        location = doc.locate(path, key=at_key)
        out.append(Finding(location, message, hint=hint))
    return sorted(set(out))


def _kind_findings(doc: Document, expected: Kind) -> list[Finding]:
    if not isinstance(doc.data, dict):
        return [Finding(doc.locate(), f"expected a mapping with `kind: {expected.value}`, got {type(doc.data).__name__}")]
    kind = doc.data.get("kind")
    if kind is not None and kind != expected.value:
        return [Finding(doc.locate(["kind"]), f"this file must have kind {expected.value!r}, not {kind!r}")]
    return []


# --- cross-file rules ----------------------------------------------------------------------------


def _inside(model_dir: str, rel: str) -> str | None:
    """Normalised repository path of rel inside model_dir, or None when it escapes."""
    if rel.startswith("/") or "\\" in rel:
        return None
    joined = posixpath.normpath(posixpath.join(model_dir, rel))
    if joined != model_dir and not joined.startswith(model_dir + "/"):
        return None
    return joined


def _check_models(tree: RepositoryTree, source: FileSource, out: list[Finding]) -> dict[ModelName, ModelEntry]:
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
            found = _kind_findings(doc, kind) or schema_findings(doc, kind)
            out.extend(found)
            ok = ok and not found
        if not ok or model_doc is None or manifest_doc is None:
            continue
        if model_doc.data["name"] != name:
            out.append(Finding(model_doc.locate(["name"]), f"model name {model_doc.data['name']!r} must equal its directory name {name!r}"))
            continue
        for link, target in source.links_outside(files.dir):
            out.append(Finding(Location(link), f"symbolic link to {target}, outside the model directory {files.dir}/: a model version is its directory's own files"))
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
        if ok and manifest.schema and manifest.sample:
            ok = _check_sample(tree, files.dir, manifest, out)
        if ok:
            entries[ModelName(name)] = ModelEntry(spec, manifest, files.dir)
    return entries


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


def _check_deployments(
    tree: RepositoryTree, repo: RepositorySpec | None, models: dict[ModelName, ModelEntry], out: list[Finding]
) -> tuple[list[DeploymentSpec], dict[tuple[str, str], str]]:
    specs: list[DeploymentSpec] = []
    seen: dict[tuple[str, str], str] = {}
    for dep in tree.deployments:
        doc = dep.document
        found = _kind_findings(doc, Kind.DEPLOYMENT) or schema_findings(doc, Kind.DEPLOYMENT)
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
        if spec.exposure and spec.exposure.type == "httproute" and not spec.exposure.gateway_name:
            out.append(Finding(doc.locate(["exposure"]), "exposure.type httproute needs exposure.gateway.name"))
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


def validate_tree(tree: RepositoryTree) -> Report:
    """Schema and cross-file findings of a loaded tree; specs when clean."""
    out = list(tree.findings)
    repo: RepositorySpec | None = None
    if tree.repository is not None:
        found = _kind_findings(tree.repository, Kind.REPOSITORY) or schema_findings(tree.repository, Kind.REPOSITORY)
        out.extend(found)
        if not found:
            repo = RepositorySpec.from_doc(tree.repository.data)
            out.extend(_check_repository(tree.repository, repo))
    models = _check_models(tree, tree.source, out)
    deployments, files = _check_deployments(tree, repo, models, out)
    n_files = (1 if tree.repository else 0) + sum(bool(m.model) + bool(m.manifest) for m in tree.models.values()) + len(tree.deployments)
    report = Report(sorted(set(out)), n_files)
    if report.ok and repo is not None:
        report.specs = Specs(repo, models, sorted(deployments, key=lambda d: (d.environment, d.model)), {k: v for k, v in files.items()})
    return report


def validate_source(source: FileSource) -> Report:
    return validate_tree(load_tree(source))


# --- version rules against a base ---------------------------------------------------------------


def _model_fingerprint(source: FileSource, model_dir: str) -> dict[str, bytes]:
    return {p: source.read(p) for p in source.walk_files(model_dir)}


def version_findings(head: RepositoryTree, head_report: Report, base: FileSource, base_label: str) -> list[Finding]:
    """Findings of the version rules (design §3) between base and head."""
    out: list[Finding] = []
    base_tree = load_tree(base)
    for name, files in sorted(head.models.items()):
        if files.model is None or not isinstance(files.model.data, dict):
            continue
        base_files = base_tree.models.get(name)
        if base_files is None or base_files.model is None or not isinstance(base_files.model.data, dict):
            continue  # a new model starts at any version
        head_v, base_v = files.model.data.get("version"), base_files.model.data.get("version")
        if not (Version.is_valid(str(head_v)) and Version.is_valid(str(base_v))):
            continue
        hv, bv = Version.parse(str(head_v)), Version.parse(str(base_v))
        where = files.model.locate(["version"])
        if hv < bv:
            out.append(Finding(where, f"version of {name} went down from {bv} ({base_label}) to {hv}"))
            continue
        changed = _model_fingerprint(head.source, files.dir) != _model_fingerprint(base, base_files.dir)
        manifest, base_manifest = files.manifest, base_files.manifest
        if not changed or manifest is None or base_manifest is None:
            breaks = []
        else:
            breaks = _schema_breaks(head, files.dir, manifest, base_tree, base_files.dir, base_manifest)
        if changed and hv == bv:
            # the hint names the version that satisfies every rule, a schema break's MAJOR included
            needed = hv.bump("major") if breaks else hv.bump("patch")
            why = f" (the input schema changed incompatibly: {'; '.join(breaks[:3])})" if breaks else ""
            out.append(
                Finding(where, f"models/{name}/ changed since {base_label} but its version is still {hv}{why}", hint=f"bump it: `gitops-ml bump {name}` or set version to {needed} or higher")
            )
            continue
        if breaks and hv.major == bv.major:
            out.append(
                Finding(
                    where,
                    f"input schema of {name} changed incompatibly since {base_label} ({'; '.join(breaks[:3])}) but the version went from {bv} to {hv} without a MAJOR bump",
                    hint=f"set version to {bv.bump('major')}: old requests may fail",
                )
            )
    return out


def _schema_breaks(head: RepositoryTree, head_dir: str, manifest: Document, base: RepositoryTree, base_dir: str, base_manifest: Document) -> list[str]:
    def schema_of(tree: RepositoryTree, model_dir: str, doc: Document) -> Any:
        rel = doc.data.get("schema") if isinstance(doc.data, dict) else None
        if not rel:
            return None
        try:
            return tree.read_document(f"{model_dir}/{rel}", json_doc=True).data
        except (LoadError, OSError):
            return None

    old, new = schema_of(base, base_dir, base_manifest), schema_of(head, head_dir, manifest)
    if old is None or new is None:
        return []
    return schema_breaks(old, new)


def iter_errors(findings: Iterable[Finding]) -> Iterable[Finding]:
    return (f for f in findings if f.severity == "error")

"""The only user of `kubernetes-validate` (Kubernetes OpenAPI schemas, offline), of CRD schemas and of CEL.

Built-in kinds are checked against the schemas of one Kubernetes version (strict: unknown fields are
errors); custom resources against the openAPIV3Schema of their CustomResourceDefinition: the structural
schemas shipped in schemas/crds (derived from named upstream releases), overridden by CRD files the user
names. A compiled validator (fastjsonschema) answers valid or not; jsonschema explains the rare invalid
object. x-kubernetes-validations rules are evaluated when the CEL runtime (cel-expr-python) is installed.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import fastjsonschema
import yaml
from jsonschema import Draft202012Validator
from kubernetes_validate import utils as kv_utils

from gitops_ml.data import data_dir
from gitops_ml.errors import ConfigError

# the oldest Kubernetes the rendered objects run on: the Deployment's preStop `sleep` action is
# on by default from 1.30 (beta), so objects are checked against 1.30's schemas
KUBERNETES_VERSION = "1.30"
CEL_HINT = "pip install 'gitops-ml[verify]' (the CEL runtime needs Python 3.11+)"

# kind files point into _definitions.json, which points into itself
_DEFINITIONS_REF = re.compile(r"^(?:/api/_definitions\.json)?#/\$defs/(.+)$")


class NoSchema(Exception):
    """Raised when neither Kubernetes nor a loaded CRD describes an object's kind."""


@dataclass
class Outcome:
    """What checking one object found: errors, and how many CEL rules ran or could not."""

    errors: list[str] = field(default_factory=list)
    rules_evaluated: int = 0
    rules_skipped: dict[str, int] = field(default_factory=dict)  # why -> count


def _path(parts: Any) -> str:
    return ".".join(str(p) for p in parts) or "(object)"


class _Checker:
    """One schema: a compiled yes/no validator, and jsonschema to explain a no.

    Formats are not checked (jsonschema without a format checker does not either, and the API server's
    int32/int64/byte formats are not JSON Schema's), so both validators agree on what is valid. The
    compiled code is kept in `cache` (by a digest of the schema), which saves ~0.4 s a kind per run."""

    def __init__(self, schema: dict[str, Any], cache: Path | None = None) -> None:
        self.schema = schema
        self._fast: Callable[[Any], Any] | None = None
        try:
            self._fast = _compiled(schema, cache)
        except (fastjsonschema.JsonSchemaDefinitionException, re.error):
            pass  # a pattern Python's re cannot compile: jsonschema alone decides
        self._explain = Draft202012Validator(schema)

    def errors(self, obj: Any) -> list[str]:
        quick = ""
        if self._fast is not None:
            try:
                self._fast(obj)
                return []
            except fastjsonschema.JsonSchemaValueException as exc:
                quick = f"{exc.message}"
        try:
            found = sorted(self._explain.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
        except re.error as exc:
            return [f"(object): a schema pattern cannot be checked here: {exc}"]
        if not found and quick:
            return [quick]
        return [f"{_path(e.absolute_path)}: {e.message}" for e in found]


def _compiled(schema: dict[str, Any], cache: Path | None) -> Callable[[Any], Any]:
    options = {"use_default": False, "use_formats": False, "detailed_exceptions": False}
    text = json.dumps(schema, sort_keys=True)
    key = hashlib.sha256(f"{fastjsonschema.VERSION}\0{sorted(options.items())}\0{text}".encode()).hexdigest()[:32]
    path = cache / f"{key}.py" if cache else None
    code = None
    if path is not None:
        try:
            code = path.read_text(encoding="utf-8")
        except OSError:
            pass
    if code is None:
        # fastjsonschema rewrites references in place: give it a copy
        code = fastjsonschema.compile_to_code(json.loads(text), **options)  # type: ignore[arg-type]
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(code, encoding="utf-8")
                os.replace(tmp, path)
            except OSError:
                pass  # an unwritable cache only costs time
    namespace: dict[str, Any] = {}
    exec(compile(code, str(path or "<fastjsonschema>"), "exec"), namespace)  # noqa: S102 - code fastjsonschema generated from our schema
    return namespace["validate"]  # type: ignore[no-any-return]


# --- built-in kinds: kubernetes-validate's files, read once per kind -------------------------------


def _schema_dir(version: str) -> str:
    """The newest schema version kubernetes-validate ships that is not newer than `version`."""
    wanted = kv_utils.major_minor(version.lstrip("v"))
    known = [v for v in kv_utils.all_versions() if _minor_key(kv_utils.major_minor(v)) <= _minor_key(wanted)]
    if not known or _minor_key(wanted) > _minor_key(kv_utils.major_minor(kv_utils.latest_version())):
        raise ConfigError(f"kubernetes-validate has no schemas for Kubernetes {version}")
    return f"v{known[-1]}-local-strict"


def _minor_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


@functools.cache
def _definitions(schema_dir: str) -> dict[str, Any]:
    path = resources.files("kubernetes_validate") / "kubernetes-json-schema" / schema_dir / "_definitions.json"
    return json.loads(path.read_text(encoding="utf-8"))["$defs"]  # type: ignore[no-any-return]


def _inline_definitions(schema: dict[str, Any], definitions: Mapping[str, Any]) -> dict[str, Any]:
    """The schema with only the definitions it reaches, as local `#/$defs/...` references.

    kubernetes-validate resolves every reference in a 1.3 MB file on each call (~200 ms an object);
    a self-contained schema compiles once and then checks an object in about 0.1 ms."""
    needed: dict[str, Any] = {}

    def local(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: local(v) for k, v in node.items() if k not in ("description", "$id")}
            ref = out.get("$ref")
            if isinstance(ref, str):
                match = _DEFINITIONS_REF.match(ref)
                if match:
                    out["$ref"] = f"#/$defs/{match.group(1)}"
                    pending.append(match.group(1))
            return out
        if isinstance(node, list):
            return [local(v) for v in node]
        return node

    pending: list[str] = []
    root = local(schema)
    while pending:
        name = pending.pop()
        if name not in needed:
            needed[name] = None
            needed[name] = local(definitions[name])
    root["$defs"] = needed
    return root  # type: ignore[no-any-return]


@functools.cache
def _builtin_checker(schema_dir: str, api_version: str, kind: str, cache: Path | None = None) -> _Checker | None:
    # kubernetes-validate's file naming: rbac.authorization.k8s.io/v1 -> rbac-v1, v1 -> v1
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = resources.files("kubernetes_validate") / "kubernetes-json-schema" / schema_dir / f"{kind.lower()}-{group_version}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text(encoding="utf-8"))
    return _Checker(_inline_definitions(schema, _definitions(schema_dir)), cache)


# --- custom resources: CRD structural schemas -----------------------------------------------------


def _structural_to_jsonschema(schema: Any) -> Any:
    """A CRD's structural schema as JSON Schema the validators understand.

    CRD schemas let unknown fields through (the API server prunes them); a typo should fail here, so an
    object with declared properties refuses others unless it preserves unknown fields. `nullable` is
    OpenAPI's way to allow null; x-kubernetes-int-or-string fields carry their own anyOf."""
    if isinstance(schema, list):
        return [_structural_to_jsonschema(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _structural_to_jsonschema(v) if k != "x-kubernetes-validations" else v for k, v in schema.items()}
    if out.get("type") == "object" and "properties" in out and "additionalProperties" not in out and not out.get(
        "x-kubernetes-preserve-unknown-fields"
    ):
        out["additionalProperties"] = False
    if out.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if out.get("x-kubernetes-int-or-string") and "type" not in out and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


# --- CEL: x-kubernetes-validations ----------------------------------------------------------------

# Kubernetes exposes a property to CEL under an escaped name when it is a CEL keyword or has characters
# CEL identifiers cannot (apiextensions-apiserver's escaping); rules are written against those names.
_CEL_RESERVED = frozenset(
    "true false null in as break const continue else for function if import let loop package namespace return var void while".split()
)


def _cel_name(name: str) -> str:
    if name in _CEL_RESERVED:
        return f"__{name}__"
    if "__" in name or any(c in name for c in ".-/"):
        return name.replace("__", "__underscores__").replace(".", "__dot__").replace("-", "__dash__").replace("/", "__slash__")
    return name


def _cel_value(value: Any, schema: Mapping[str, Any]) -> Any:
    """The value as a rule sees it after the API server's defaulting: absent properties that declare a
    default get it, object properties go under their escaped names, map keys stay as they are."""
    if isinstance(value, dict):
        properties = schema.get("properties")
        if isinstance(properties, dict):
            defaults = {k: sub["default"] for k, sub in properties.items() if isinstance(sub, dict) and "default" in sub and k not in value}
            return {_cel_name(k): _cel_value(v, properties.get(k) or {}) for k, v in {**value, **defaults}.items()}
        extra = schema.get("additionalProperties")
        inner = extra if isinstance(extra, dict) else {}
        return {k: _cel_value(v, inner) for k, v in value.items()}
    if isinstance(value, list):
        items = schema.get("items")
        return [_cel_value(v, items if isinstance(items, dict) else {}) for v in value]
    return value


@dataclass
class _Rule:
    text: str
    message: str
    field_path: str
    program: Any  # a compiled CEL expression, or None when skipped
    skipped: str = ""  # why it is not evaluated


@dataclass
class _RuleSite:
    """The rules of one schema node and of the nodes under it (only where some rule lives)."""

    schema: Mapping[str, Any]
    rules: list[_Rule]
    properties: dict[str, "_RuleSite"]
    items: "_RuleSite | None"
    values: "_RuleSite | None"  # additionalProperties: a map's values


class _Cel:
    """The CEL environment, or why there is none."""

    def __init__(self) -> None:
        try:
            from cel_expr_python import cel  # noqa: PLC0415 - optional: the `verify` extra
            from cel_expr_python.ext.ext_strings import ExtStrings  # noqa: PLC0415
        except ImportError:
            self.env: Any = None
            self.missing = f"the CEL runtime is not installed: {CEL_HINT}"
            return
        self.env = cel.NewEnv(variables={"self": cel.Type.DYN}, extensions=[ExtStrings()])
        self.missing = ""

    def rule(self, spec: Mapping[str, Any]) -> _Rule:
        text = str(spec.get("rule", ""))
        message = str(spec.get("message") or f"failed rule: {' '.join(text.split())}")
        rule = _Rule(text, message, str(spec.get("fieldPath") or ""), None)
        if "oldSelf" in text:
            rule.skipped = "transition rules compare with the previous object, which a render does not have"
        elif self.env is None:
            rule.skipped = self.missing
        else:
            try:
                rule.program = self.env.compile(text)
            except Exception:  # noqa: BLE001 - the runtime raises plain RuntimeError/ValueError on any compile error
                rule.skipped = "the rule uses a function this CEL runtime lacks"
        return rule


def _rule_site(schema: Any, cel: _Cel) -> _RuleSite | None:
    if not isinstance(schema, dict):
        return None
    rules = [cel.rule(r) for r in schema.get("x-kubernetes-validations") or [] if isinstance(r, dict)]
    properties = {}
    for name, sub in (schema.get("properties") or {}).items():
        site = _rule_site(sub, cel)
        if site is not None:
            properties[name] = site
    items = _rule_site(schema.get("items"), cel)
    values = _rule_site(schema.get("additionalProperties"), cel)
    if not rules and not properties and items is None and values is None:
        return None
    return _RuleSite(schema, rules, properties, items, values)


def _evaluate(site: _RuleSite, value: Any, path: list[Any], outcome: Outcome) -> None:
    if value is None:
        return
    if site.rules:
        bound = _cel_value(value, site.schema)
        for rule in site.rules:
            if rule.program is None:
                outcome.rules_skipped[rule.skipped] = outcome.rules_skipped.get(rule.skipped, 0) + 1
                continue
            outcome.rules_evaluated += 1
            where = _path(path) + (rule.field_path if rule.field_path.startswith(".") else "")
            try:
                result = rule.program.eval(data={"self": bound}).value()
            except Exception as exc:  # noqa: BLE001 - evaluation errors fail the rule, as in the API server
                outcome.errors.append(f"{where}: {rule.message} (rule could not be evaluated: {exc})")
                continue
            if result is not True:
                outcome.errors.append(f"{where}: {rule.message}")
    if isinstance(value, dict):
        for name, sub in site.properties.items():
            if name in value:
                _evaluate(sub, value[name], [*path, name], outcome)
        if site.values is not None:
            for key, item in value.items():
                _evaluate(site.values, item, [*path, key], outcome)
    elif isinstance(value, list) and site.items is not None:
        for index, item in enumerate(value):
            _evaluate(site.items, item, [*path, index], outcome)


@dataclass
class _Crd:
    """One served version of a CustomResourceDefinition, compiled on first use."""

    schema: dict[str, Any]
    source: str
    _checker: _Checker | None = None
    _rules: _RuleSite | None = None

    def check(self, obj: dict[str, Any], cel: _Cel, cache: Path | None) -> Outcome:
        if self._checker is None:
            root = _structural_to_jsonschema(self.schema)
            if isinstance(root.get("properties"), dict):
                # every object has these, whether or not the CRD's schema spells them out
                implicit = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"}}
                root["properties"] = {**implicit, **root["properties"]}
            self._checker = _Checker(root, cache)
            self._rules = _rule_site(self.schema, cel)
        outcome = Outcome(errors=self._checker.errors(obj))
        # rules assume a structurally valid object, as the API server checks the schema first
        if self._rules is not None and not outcome.errors:
            _evaluate(self._rules, obj, [], outcome)
        return outcome


def shipped_crd_directory() -> Path:
    """schemas/crds: structural schemas derived by scripts/derive_crd_schemas.py, with index.json."""
    return data_dir("schemas") / "crds"


class Schemas:
    """Kubernetes' own schemas for one version, and CRD schemas: shipped ones, then the user's on top."""

    def __init__(
        self, directories: Sequence[Path] = (), *, kubernetes_version: str = KUBERNETES_VERSION, shipped: bool = True,
        cache: Path | None = None,
    ) -> None:
        """`cache`: a directory to keep compiled validators in between runs (none: compile every run)."""
        self.kubernetes_version = kubernetes_version
        self._cache = cache
        self._schema_dir = _schema_dir(kubernetes_version)
        self._crds: dict[tuple[str, str], _Crd] = {}
        self._cel = _Cel()
        digest = hashlib.sha256(f"kubernetes {kubernetes_version}\0cel {not self._cel.missing}\0".encode())
        if shipped:
            index = shipped_crd_directory() / "index.json"
            for entry in json.loads(index.read_text(encoding="utf-8"))["crds"]:
                path = shipped_crd_directory() / entry["file"]
                data = path.read_bytes()
                digest.update(hashlib.sha256(data).digest())
                self._add(json.loads(data), f"{entry['source']['repository']} {entry['source']['tag']}")
        for directory in directories:
            if not directory.is_dir():
                raise ConfigError(f"CRD directory {directory} does not exist")
            for path in sorted(directory.glob("*.y*ml")) + sorted(directory.glob("*.json")):
                digest.update(f"{path}\0".encode())
                for doc in _documents(path, digest):
                    self._add(doc, str(path))
        self.digest = digest.hexdigest()

    def _add(self, doc: Any, source: str) -> None:
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            return
        spec = doc.get("spec") or {}
        for version in spec.get("versions") or []:
            if not version.get("served"):
                continue
            schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {}
            self._crds[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = _Crd(schema, source)

    def __len__(self) -> int:
        return len(self._crds)

    def check(self, obj: dict[str, Any]) -> Outcome:
        """Errors of one object against its schema; raise NoSchema when there is none here."""
        api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
        checker = _builtin_checker(self._schema_dir, api_version, kind, self._cache)
        if checker is not None:
            return Outcome(errors=checker.errors(obj))
        crd = self._crds.get((api_version, kind))
        if crd is None:
            raise NoSchema(f"no schema for {kind} {api_version}")
        return crd.check(obj, self._cel, self._cache)


def _documents(path: Path, digest: Any) -> Iterator[Any]:
    try:
        data = path.read_bytes()
        digest.update(hashlib.sha256(data).digest())
        if path.suffix == ".json":
            yield json.loads(data)
            return
        yield from yaml.load_all(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read CRD file {path}: {exc}") from exc

"""The only user of `kubernetes-validate` (Kubernetes OpenAPI schemas, offline) and of CRD files.

Objects are checked against the schemas of one Kubernetes version (strict: unknown fields are
errors), or against the openAPIV3Schema of a CustomResourceDefinition read from a directory.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Iterator

import yaml
from jsonschema import Draft7Validator
from kubernetes_validate import utils as kv_utils

from gitops_ml.errors import ConfigError

# the oldest Kubernetes the rendered objects run on: the Deployment's preStop `sleep` action is
# on by default from 1.30 (beta), so objects are checked against 1.30's schemas
KUBERNETES_VERSION = "1.30"


class NoSchema(Exception):
    """Raised when neither Kubernetes nor a loaded CRD describes an object's kind."""


def _path(parts: Any) -> str:
    return ".".join(str(p) for p in parts) or "(object)"


def kubernetes_errors(obj: dict[str, Any], version: str = KUBERNETES_VERSION) -> list[str]:
    """Schema errors of a built-in object; raise NoSchema for kinds Kubernetes does not define."""
    try:
        kv_utils.validate(obj, version, strict=True)
    except kv_utils.SchemaNotFoundError as exc:
        raise NoSchema(exc.message) from None
    except kv_utils.VersionNotSupportedError as exc:
        raise ConfigError(f"kubernetes-validate has no schemas for Kubernetes {version}", hint=exc.message) from None
    except kv_utils.ValidationError as exc:
        return [f"{_path(exc.absolute_path)}: {exc.message}"]
    return []


def _strict(schema: Any) -> Any:
    """CRD schemas let unknown fields through (the API server prunes them); a typo should fail here."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            out.get("type") == "object"
            and "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


class CrdSchemas:
    """openAPIV3Schemas of the served versions of every CRD file in some directories."""

    def __init__(self, directories: list[Path]) -> None:
        self._schemas: dict[tuple[str, str], Any] = {}
        for directory in directories:
            if not directory.is_dir():
                raise ConfigError(f"CRD directory {directory} does not exist")
            for path in sorted(directory.glob("*.y*ml")):
                for doc in _documents(path):
                    self._add(doc)

    def _add(self, doc: Any) -> None:
        if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
            return
        spec = doc.get("spec") or {}
        for version in spec.get("versions") or []:
            if not version.get("served"):
                continue
            schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {}
            self._schemas[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema

    def __len__(self) -> int:
        return len(self._schemas)

    @functools.cache  # noqa: B019 - one instance per verify run
    def _validator(self, api_version: str, kind: str) -> Draft7Validator:
        return Draft7Validator(_strict(self._schemas[(api_version, kind)]))

    def errors(self, obj: dict[str, Any]) -> list[str]:
        key = (str(obj.get("apiVersion")), str(obj.get("kind")))
        if key not in self._schemas:
            raise NoSchema(f"no CRD schema for {key[1]} {key[0]}")
        found = sorted(self._validator(*key).iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
        return [f"{_path(e.absolute_path)}: {e.message}" for e in found]


def _documents(path: Path) -> Iterator[Any]:
    try:
        yield from yaml.load_all(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read CRD file {path}: {exc}") from exc

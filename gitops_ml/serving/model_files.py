"""The model directory's files as the server reads them: which files (ModelFiles, from the manifest or
GITOPS_ML_* variables in the image), and the JSON ones parsed and compiled with errors located in the
file. Reads files; knows nothing of requests.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import orjson

from gitops_ml.errors import LoadError, Location
from gitops_ml.serving.decoding import RequestDecoder
from gitops_ml.serving.scoring import display_path


@dataclass(frozen=True)
class ModelFiles:
    """Files of the model directory the server reads; names come from the manifest (defaults here).

    Inside the image they can be set with GITOPS_ML_SCRIPT, GITOPS_ML_SCHEMA, GITOPS_ML_SAMPLE and
    GITOPS_ML_OUTPUT_SCHEMA, because the server does not parse manifest.yaml there. A built-in
    scorer (GITOPS_ML_BUILTIN, on GITOPS_ML_ARTIFACT) replaces the script.
    """

    script: str = "score.py"
    schema: str = "schema.json"
    sample: str = "sample.json"
    output_schema: str = ""
    builtin: str = ""
    artifact: str = ""
    builtin_options: str = ""  # JSON: the manifest's scoring options for the built-in

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ModelFiles":
        env = os.environ if env is None else env
        return cls(
            script=env.get("GITOPS_ML_SCRIPT") or cls.script,
            schema=env.get("GITOPS_ML_SCHEMA") or cls.schema,
            sample=env.get("GITOPS_ML_SAMPLE") or cls.sample,
            output_schema=env.get("GITOPS_ML_OUTPUT_SCHEMA") or cls.output_schema,
            builtin=env.get("GITOPS_ML_BUILTIN") or cls.builtin,
            artifact=env.get("GITOPS_ML_ARTIFACT") or cls.artifact,
            builtin_options=env.get("GITOPS_ML_BUILTIN_OPTIONS") or cls.builtin_options,
        )


def read_model_json(path: Path) -> Any:
    """A JSON file of the model directory (schema, sample), or None when it is absent; LoadError located
    in the file when it cannot be read or parsed."""
    if not path.is_file():
        return None
    where = display_path(path)
    try:
        return orjson.loads(path.read_bytes())
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror}", location=Location(where)) from exc
    except orjson.JSONDecodeError as exc:
        raise LoadError(f"not valid JSON: {exc.msg}", location=Location(where, exc.lineno, exc.colno),
                        hint="run `gitops-ml validate` on the repository") from exc


def compile_schema(schema: Any, path: Path) -> RequestDecoder | None:
    """The request decoder for a parsed schema.json; LoadError located in the file when it cannot serve."""
    if not isinstance(schema, dict):
        if schema is None:
            return None
        raise LoadError("the request schema must be a JSON object", location=Location(display_path(path)), hint="run `gitops-ml schema generate`")
    try:
        return RequestDecoder.from_schema(schema)
    except RecursionError as exc:
        raise LoadError("the request schema nests too deeply to be checked", location=Location(display_path(path)),
                        hint="run `gitops-ml validate` on the repository") from exc
    except (ValueError, TypeError, AttributeError, re.error) as exc:
        raise LoadError(f"the request schema cannot be used: {exc}", location=Location(display_path(path)),
                        hint="run `gitops-ml validate` on the repository") from exc

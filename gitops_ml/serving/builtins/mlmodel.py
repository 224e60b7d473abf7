"""An MLflow model's own description, read without MLflow: the MLmodel file (flavours, signature,
input example, Python and MLflow versions) and the requirements MLflow recorded, from the model
directory or from its zip. Pure reading; nothing is loaded or executed.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from gitops_ml.errors import LoadError, Location

MLMODEL = "MLmodel"


@dataclass(frozen=True)
class MLModel:
    """What the MLmodel file and its neighbours say about a model."""

    flavors: Mapping[str, Mapping[str, Any]]
    inputs: list[dict[str, Any]] | None  # signature inputs (ColSpecs or TensorSpecs), None when unsigned
    outputs: list[dict[str, Any]] | None
    params: list[dict[str, Any]] | None
    example: Any = None  # the input example as MLflow saved it (input_example.json)
    example_info: Mapping[str, Any] = field(default_factory=dict)
    requirements: str = ""  # requirements.txt as MLflow recorded it
    conda: str = ""  # conda.yaml, when there is no requirements.txt
    python_version: str = ""
    mlflow_version: str = ""
    run_id: str = ""
    created: str = ""
    files: Mapping[str, int] = field(default_factory=dict)  # relative path -> size

    @property
    def signed(self) -> bool:
        return self.inputs is not None

    @property
    def columns(self) -> bool:
        """Column-based (a DataFrame) rather than tensor-based input."""
        return bool(self.inputs) and all(spec.get("type") != "tensor" for spec in self.inputs or [])


def _json_field(raw: Any, what: str, where: Location) -> list[dict[str, Any]] | None:
    if raw in (None, "", "null"):
        return None
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise LoadError(f"MLmodel's signature {what} is not JSON: {exc}", location=where) from exc
    if not isinstance(value, list):
        raise LoadError(f"MLmodel's signature {what} must be a list of specs", location=where)
    return value


def parse_mlmodel(text: bytes, read: Any, names: Mapping[str, int], where: Location) -> MLModel:
    """MLmodel's text, with `read(name) -> bytes | None` for the files beside it."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LoadError(f"MLmodel is not YAML: {exc}", location=where) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("flavors"), dict):
        raise LoadError("MLmodel lists no flavors", location=where, hint="is this an MLflow model directory?")
    signature = doc.get("signature") or {}
    info = doc.get("saved_input_example_info") or {}
    example = None
    if isinstance(info, dict) and info.get("artifact_path"):
        raw = read(str(info["artifact_path"]))
        if raw is not None:
            try:
                example = json.loads(raw)
            except ValueError as exc:
                raise LoadError(f"the input example {info['artifact_path']} is not JSON: {exc}", location=where) from exc
    pyfunc = doc["flavors"].get("python_function") or {}
    python_env = read("python_env.yaml")
    python = str(pyfunc.get("python_version") or "")
    if not python and python_env:
        python = str((yaml.safe_load(python_env) or {}).get("python") or "")
    requirements = read("requirements.txt")
    conda = read("conda.yaml") if requirements is None else None
    return MLModel(
        flavors=doc["flavors"],
        inputs=_json_field(signature.get("inputs"), "inputs", where),
        outputs=_json_field(signature.get("outputs"), "outputs", where),
        params=_json_field(signature.get("params"), "params", where),
        example=example,
        example_info=info if isinstance(info, dict) else {},
        requirements=(requirements or b"").decode("utf-8", "replace"),
        conda=(conda or b"").decode("utf-8", "replace"),
        python_version=python,
        mlflow_version=str(doc.get("mlflow_version") or ""),
        run_id=str(doc.get("run_id") or ""),
        created=str(doc.get("utc_time_created") or ""),
        files=dict(names),
    )


def read_mlmodel(path: Path) -> MLModel:
    """The MLmodel of an MLflow model directory, or of its zip."""
    where = Location(str(path))
    if path.is_dir():
        mlmodel = path / MLMODEL
        if not mlmodel.is_file():
            raise LoadError(f"{path} has no MLmodel file", location=where, hint="point at the MLflow model directory (the one holding MLmodel)")
        names = {p.relative_to(path).as_posix(): p.stat().st_size for p in path.rglob("*") if p.is_file()}

        def read_dir(name: str) -> bytes | None:
            target = path / name
            return target.read_bytes() if target.is_file() else None

        return parse_mlmodel(mlmodel.read_bytes(), read_dir, names, Location(str(mlmodel)))
    try:
        with zipfile.ZipFile(path) as zf:
            names = {i.filename: i.file_size for i in zf.infolist() if not i.is_dir()}
            if MLMODEL not in names:
                raise LoadError("the zip has no MLmodel at its root", location=where, hint="zip the MLflow model directory's contents")

            def read_zip(name: str) -> bytes | None:
                return zf.read(name) if name in names else None

            return parse_mlmodel(zf.read(MLMODEL), read_zip, names, Location(f"{path}!{MLMODEL}"))
    except zipfile.BadZipFile as exc:
        raise LoadError(f"not a zip of an MLflow model: {exc}", location=where) from exc

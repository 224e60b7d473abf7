"""Rules for manifests that name a built-in scorer, located at `scoring.builtin`: the artifact is in
a format that built-in loads (when it is a file of the repository), the model's requirements name
the framework that saved it, and a zipped MLflow model has a pyfunc loader and finds every package
MLflow recorded for it. Checked before any build starts. Reads files; never prints.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from typing import Callable

from gitops_ml.errors import LoadError, Location
from gitops_ml.repo.loading import Document, parse_yaml
from gitops_ml.serving.builtins.catalog import (
    BUILTINS,
    MLFLOW_ZIP,
    canonical,
    format_problem,
    named,
    requirement_name,
    sniff_format,
)
from gitops_ml.types import Finding, ManifestSpec, ModelSpec

Read = Callable[[str], bytes]


def requirement_lines(model_dir: str, manifest: ManifestSpec, read: Read) -> tuple[str, list[str]]:
    """(the requirements file's repository path, its requirement lines); a conda file's pip entries."""
    if manifest.requirements:
        path = posixpath.normpath(f"{model_dir}/{manifest.requirements}")
        return path, read(path).decode("utf-8", "replace").splitlines()
    if manifest.conda:
        path = posixpath.normpath(f"{model_dir}/{manifest.conda}")
        try:
            doc = parse_yaml(path, read(path)).data or {}
        except LoadError:
            return path, []  # the build reports the conda file's own errors at their lines
        pip = [entry for dep in (doc.get("dependencies") or []) if isinstance(dep, dict) for entry in (dep.get("pip") or [])]
        return path, [str(entry) for entry in pip]
    return "", []


def check_builtin(manifest_doc: Document, model_dir: str, spec: ModelSpec, manifest: ManifestSpec, read: Read, out: list[Finding]) -> bool:
    """Findings of a built-in manifest, appended to `out`; False when there were any."""
    builtin = BUILTINS[manifest.builtin]
    at = manifest_doc.locate(["scoring", "builtin"])
    before = len(out)
    if manifest.probabilities and not builtin.probabilities:
        out.append(Finding(manifest_doc.locate(["scoring", "probabilities"]), f"builtin {builtin.name} answers what the model's predict returns; it has no probabilities option",
                           hint="remove `probabilities: true` (a pyfunc that returns probabilities answers them as predictions)"))
    path, lines = requirement_lines(model_dir, manifest, read)
    if builtin.needs_framework and not named(builtin, lines):
        version = f"=={spec.framework_version}" if spec.framework_version else "==<the version that saved the artifact>"
        where = f"{path} does not name it" if path else "the manifest names no requirements file (dependencies.requirements)"
        out.append(Finding(at, f"builtin {builtin.name} needs {builtin.framework[0]} in the image, at the version that saved the artifact: {where}",
                           hint=f"add `{builtin.framework[0]}{version}` to the model's requirements"))
    if spec.artifact.scheme == "path":
        artifact = posixpath.normpath(f"{model_dir}/{spec.artifact.uri}")
        data = read(artifact)
        names: list[str] = []
        if data.startswith(b"PK\x03\x04"):
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as zf:
                    names = zf.namelist()
            except zipfile.BadZipFile:
                names = []
        found = sniff_format(data[:64], names)
        problem = format_problem(builtin, found, artifact)
        if problem is not None:
            out.append(Finding(at, problem[0], hint=problem[1]))
        elif found == MLFLOW_ZIP:
            _check_mlflow(at, artifact, data, path, lines, out)
    return len(out) == before


def _check_mlflow(at: Location, artifact: str, data: bytes, path: str, lines: list[str], out: list[Finding]) -> None:
    from gitops_ml.serving.builtins.mlmodel import MLMODEL, parse_mlmodel  # noqa: PLC0415 - only MLflow models need it

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = {i.filename: i.file_size for i in zf.infolist() if not i.is_dir()}
        try:
            info = parse_mlmodel(zf.read(MLMODEL), lambda n: zf.read(n) if n in names else None, names, Location(f"{artifact}!{MLMODEL}"))
        except LoadError as exc:
            out.append(Finding(exc.location or at, exc.message, hint=exc.hint))
            return
    if "python_function" not in info.flavors:
        out.append(Finding(at, f"the MLflow model in {artifact} has no python_function flavour (flavours: {', '.join(sorted(info.flavors))}); mlflow.pyfunc cannot load it",
                           hint="log the model with a flavour that has a pyfunc loader, or write a score.py"))
    recorded = [requirement_name(line) for line in info.requirements.splitlines()]
    declared = {requirement_name(line) for line in lines}
    skipped = {"mlflow", "mlflow-skinny"}  # the built-in's loader: mlflow-skinny is added when neither is named
    missing = [name for name in recorded if name and name not in skipped and canonical(name) not in declared]
    if missing:
        where = path or "the manifest's requirements (none named)"
        out.append(Finding(at, f"the MLflow model needs {', '.join(missing)} (its requirements.txt), which {where} does not name; the image would not get {'them' if len(missing) > 1 else 'it'}",
                           hint="copy the pins from the model's requirements.txt; `gitops-ml import mlflow` writes them"))

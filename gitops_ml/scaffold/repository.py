"""`init`: the files of a new repository that validates, renders and serves as is (pure: returns
path -> bytes; the CLI writes them). Templates live in templates/init; Jinja2 runs StrictUndefined
so a missing variable names its template instead of writing an empty string.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import jinja2

from gitops_ml import __version__
from gitops_ml.errors import GitopsMlError, UsageError
from gitops_ml.repo import catalog
from gitops_ml.types import Engine

_INIT = "init"


@dataclass(frozen=True)
class InitRequest:
    directory: Path
    engine: Engine = Engine.ARGOCD
    registry: str = ""
    name: str = ""
    source_url: str = ""


def repository_name(directory: Path) -> str:
    """A DNS-1123 label derived from the directory name."""
    # accents go, not the letters they sit on: répo -> repo
    ascii_name = unicodedata.normalize("NFKD", directory.resolve().name).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9-]+", "-", ascii_name.lower()).strip("-")[:63].strip("-")
    return name or "models"


def _environment(template_dir: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def scaffold(request: InitRequest) -> dict[str, bytes]:
    """Repository-relative path -> content of every file `init` writes."""
    root = catalog.data_dir("templates") / _INIT
    name = request.name or repository_name(request.directory)
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name):
        hint = "lower-case letters, digits and '-', at most 63" if request.name else "pass --name NAME (lower-case letters, digits and '-')"
        raise UsageError(f"repository name {name!r} is not a DNS-1123 label", hint=hint)
    artifact = (root / "models/iris/model.json").read_bytes()
    context = {
        "name": name,
        "engine": request.engine.value,
        "registry": request.registry or f"registry.example.com/{name}",
        "source_url": request.source_url or f"https://github.com/example/{name}.git",
        "artifact_sha256": hashlib.sha256(artifact).hexdigest(),
        "version": __version__,  # the pre-commit hooks install exactly this gitops-ml, as the workflows do
    }
    env = _environment(root)
    files: dict[str, bytes] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        rel = path.relative_to(root).as_posix()
        if rel.endswith(".j2"):
            try:
                text = env.get_template(rel).render(**context)
            except jinja2.TemplateError as exc:
                line = getattr(exc, "lineno", None)
                where = f"{path}:{line}" if line else str(path)
                raise GitopsMlError(f"template error in {where}: {exc}") from exc
            files[rel[: -len(".j2")]] = text.encode()
        else:
            files[rel] = path.read_bytes()
    files[".gitignore"] = files.pop("gitignore")
    files[".pre-commit-config.yaml"] = files.pop("pre-commit-config.yaml")
    files["deployments/staging/iris.yaml"] = files.pop("staging.yaml")
    files["deployments/prod/iris.yaml"] = files.pop("prod.yaml")
    for schema_name, data in catalog.schema_files().items():
        files[f".gitops-ml/schemas/{schema_name}"] = data
    files.update(_workflows(request.engine.value, context["registry"]))
    return dict(sorted(files.items()))


def _workflows(engine: str, registry: str) -> dict[str, bytes]:
    """GitHub Actions workflows, when the registry package that renders them is present."""
    try:
        from gitops_ml.scaffold.workflows import render_workflows  # noqa: PLC0415 - optional stage
    except ImportError:
        return {}
    return {path: text.encode() for path, text in render_workflows(engine=engine, registry=registry).items()}

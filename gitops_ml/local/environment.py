"""A model's own Python environment on this machine, as `mlflow models serve --env-manager` makes one:
a virtual environment with the model's requirements, the scoring server's own dependencies and this
gitops-ml's runtime, built once and reused, cached under the user's cache directory by a digest of
what goes into it. uv makes it when it is installed (much faster, and its cache is shared by every
model); pip otherwise. Never prints: progress goes through a callback.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from gitops_ml.build.requirements import read_requirements
from gitops_ml.build.wheelhouse import runtime_wheel, serving_requirements
from gitops_ml.errors import ExternalToolError, Location
from gitops_ml.serving.builtins.catalog import builtin_requirements
from gitops_ml.types import ManifestSpec

Progress = Callable[[str], None]

FORMAT = "1"  # bump when what an environment holds changes for the same inputs
MARKER = "gitops-ml-environment.json"


@dataclass(frozen=True)
class ModelEnvironment:
    """A ready environment: its interpreter, whether this call made it, and with which installer."""

    path: Path
    python: Path
    created: bool
    installer: str  # uv | pip
    seconds: float


def installer() -> tuple[str, list[str]]:
    """("uv", [uv]) when uv is installed (beside this Python, on PATH, or as the `uv` package), else
    ("pip", [])."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return "uv", [str(beside)]
    found = shutil.which("uv")
    if found:
        return "uv", [found]
    if importlib.util.find_spec("uv") is not None:
        from uv import find_uv_bin  # noqa: PLC0415 - the `uv` wheel ships its binary this way

        return "uv", [find_uv_bin()]
    return "pip", []


def environment_key(python_version: str, requirements: list[str], runtime: Path) -> str:
    """What an environment is made of, as a digest: same inputs, same directory."""
    h = hashlib.sha256()
    for part in (FORMAT, python_version, *sorted(requirements), runtime.name, hashlib.sha256(runtime.read_bytes()).hexdigest()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]


def ensure_environment(
    model_dir: Path,
    manifest: ManifestSpec,
    *,
    cache: Path,
    progress: Progress,
    label: str = "",
    force_installer: str = "",
) -> ModelEnvironment:
    """The environment of the model in `model_dir`, made when no environment of the same inputs
    exists yet. `label` is how messages name the model directory (models/iris)."""
    started = time.perf_counter()
    files = _requirement_files(model_dir, manifest)
    reqs = read_requirements(label or model_dir.name, manifest, files)
    lines = list(reqs.lines) + builtin_requirements(manifest.builtin, reqs.lines) + serving_requirements()
    runtime = runtime_wheel(cache, progress)
    python_version = f"{sys.implementation.name}-{sys.version_info.major}.{sys.version_info.minor}"
    target = cache / "envs" / environment_key(python_version, lines, runtime)
    python = target / "bin" / "python"
    tool, uv = installer()
    if force_installer:
        tool = force_installer
        if tool == "uv" and not uv:
            raise ExternalToolError("uv is not installed", hint="pip install uv, or use pip")
    if (target / MARKER).is_file() and python.exists():
        return ModelEnvironment(target, python, False, json.loads((target / MARKER).read_text()).get("installer", tool), time.perf_counter() - started)
    if manifest.python and manifest.python != f"{sys.version_info.major}.{sys.version_info.minor}":
        progress(f"note: the manifest asks for Python {manifest.python}; the local environment uses this machine's {sys.version_info.major}.{sys.version_info.minor}")
    target.parent.mkdir(parents=True, exist_ok=True)
    progress(f"making the model's environment with {tool} ({len(lines)} requirements): {target}")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".make-") as tmp:
        # made beside its final place and renamed: an interrupted run leaves no half environment
        work = Path(tmp) / "env"
        req_file = Path(tmp) / "requirements.txt"
        req_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        where = Location(reqs.path) if reqs.path else None
        if tool == "uv":
            _run([*uv, "venv", "--quiet", "--python", sys.executable, str(work)], "creating the environment", where)
            _run([*uv, "pip", "install", "--quiet", "--python", str(work / "bin" / "python"), "-r", str(req_file)], "installing the requirements", where)
            _run([*uv, "pip", "install", "--quiet", "--no-deps", "--python", str(work / "bin" / "python"), str(runtime)], "installing the gitops-ml runtime", where)
        else:
            _run([sys.executable, "-m", "venv", str(work)], "creating the environment", where)
            pip = [str(work / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            _run([*pip, "-r", str(req_file)], "installing the requirements", where)
            _run([*pip, "--no-deps", str(runtime)], "installing the gitops-ml runtime", where)
        (work / MARKER).write_text(json.dumps({"installer": tool, "requirements": lines, "runtime": runtime.name, "python": python_version}, indent=1))
        try:
            os.replace(work, target)
        except OSError:
            if not (target / MARKER).is_file():  # another command made the same environment meanwhile: use it
                raise
    return ModelEnvironment(target, python, True, tool, time.perf_counter() - started)


def _requirement_files(model_dir: Path, manifest: ManifestSpec) -> Mapping[str, bytes]:
    out = {}
    for rel in (manifest.requirements, manifest.conda):
        if rel and (model_dir / rel).is_file():
            out[os.path.normpath(rel)] = (model_dir / rel).read_bytes()
    return out


def _run(cmd: list[str], what: str, where: Location | None) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise ExternalToolError(
            f"{what} failed: {' '.join(detail[-6:]) or f'exit code {proc.returncode}'}",
            location=where,
            hint="check the requirement named above, and that the package index is reachable (PIP_INDEX_URL, proxies); "
                 "or serve with --env-manager local in an environment you made yourself",
        )

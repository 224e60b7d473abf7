"""The gitops-ml runtime wheel that goes into every image, built once per source tree (or repacked
from the install) and cached. The model's own dependencies come from its lock (lock.py, layers.py).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_ml import __version__
from gitops_ml.build.layers import CONTEXT_MTIME
from gitops_ml.build.plan import Progress
from gitops_ml.errors import (
    ConfigError,
    ExternalToolError,
)
from gitops_ml.validate.locks import SERVING_DISTRIBUTIONS, serving_requirements

if TYPE_CHECKING:
    pass


# re-exported: the server's own distributions belong to every lock (validate.locks owns the list)
__all__ = ["SERVING_DISTRIBUTIONS", "runtime_wheel", "serving_requirements"]


def _source_root() -> Path | None:
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "gitops-ml"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def _source_digest(root: Path) -> str:
    h = hashlib.sha256()
    paths = [root / "pyproject.toml", root / "README.md"]
    for sub in ("gitops_ml", "schemas", "templates"):
        paths += sorted(p for p in (root / sub).rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in paths:
        if path.is_file():
            h.update(f"{path.relative_to(root)}\0".encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:24]


def runtime_wheel(cache: Path, progress: Progress) -> Path:
    """A wheel of the running gitops-ml: built from the source checkout, or repacked from the install.

    Cached by the content of the sources, so the runtime layer is byte-identical between builds.
    GITOPS_ML_RUNTIME_WHEEL names a prebuilt wheel to use instead (pinned runtimes, benchmarks).
    """
    pinned = os.environ.get("GITOPS_ML_RUNTIME_WHEEL")
    if pinned:
        if not Path(pinned).is_file():
            raise ConfigError(f"GITOPS_ML_RUNTIME_WHEEL={pinned} is not a file")
        return Path(pinned)
    root = _source_root()
    key = _source_digest(root) if root else f"installed-{__version__}"
    target = cache / "runtime" / key
    wheels = sorted(target.glob("gitops_ml-*.whl")) if target.is_dir() else []
    if wheels:
        return wheels[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".wheel-") as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        if root is not None:
            progress(f"building the gitops-ml {__version__} runtime wheel from {root}")
            env = dict(os.environ, SOURCE_DATE_EPOCH=str(CONTEXT_MTIME))
            cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
                   "--quiet", "--wheel-dir", str(out), str(root)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if proc.returncode != 0:
                raise ExternalToolError(
                    f"cannot build the gitops-ml wheel from {root}: {(proc.stderr or proc.stdout).strip()[-800:]}",
                    hint="the source checkout needs its build backend installed (pip install hatchling)",
                )
        else:
            _repack_installed(out)
        try:
            os.replace(out, target)
        except OSError:
            if not target.is_dir():
                raise
    return sorted(target.glob("gitops_ml-*.whl"))[0]


def _repack_installed(out: Path) -> None:
    """Zip the installed distribution's files back into a wheel (when there is no source checkout)."""
    dist = importlib.metadata.distribution("gitops-ml")
    files = [f for f in dist.files or [] if not str(f).startswith("..") and "__pycache__" not in str(f)]
    wheel = out / f"gitops_ml-{dist.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(files, key=str):
            path = Path(str(f.locate()))
            if path.is_file():
                info = zipfile.ZipInfo(str(f).replace(os.sep, "/"), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                zf.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)

"""Dependencies resolved on the build host into a wheelhouse for the image's platform and Python,
and the gitops-ml runtime wheel, so that the image build needs no network.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_ml import __version__
from gitops_ml.build.plan import ImagePlan, Progress
from gitops_ml.build.requirements import Requirements, requirements_of
from gitops_ml.errors import (
    ConfigError,
    ExternalToolError,
    Location,
)
from gitops_ml.serving.builtins.catalog import builtin_requirements

if TYPE_CHECKING:
    pass


# fixed file times make the COPY layers byte-identical however often the context is rewritten
CONTEXT_MTIME = 315532800  # 1980-01-01, the oldest time a zip (wheel) can hold
# Distributions the scoring server imports; the image gets these (with pyproject's bounds), not
# click/GitPython/docker/kubernetes-validate, which only the command line needs.
SERVING_DISTRIBUTIONS = ("uvicorn", "httptools", "uvloop", "prometheus-client", "numpy", "pandas", "orjson", "jsonschema", "pyyaml")


def serving_requirements() -> list[str]:
    """The server's third-party requirements, with the bounds the installed gitops-ml declares."""
    wanted = {_canonical(n) for n in SERVING_DISTRIBUTIONS}
    found: dict[str, str] = {}
    try:
        declared = importlib.metadata.requires("gitops-ml") or []
    except importlib.metadata.PackageNotFoundError:
        declared = []
    for req in declared:
        spec, _, marker = req.partition(";")
        if "extra" in marker:
            continue
        name = _canonical(re.split(r"[\s<>=!~\[(]", spec.strip(), maxsplit=1)[0])
        if name in wanted:
            found[name] = spec.strip()
    return [found.get(name, name) for name in sorted(wanted)]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _platform_args(python: str) -> list[str]:
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    digits = python.replace(".", "")
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", python, "--abi", f"cp{digits}", "--abi", "abi3", "--abi", "none"]
    # pip does not expand manylinux_2_N to older glibc tags; list them (Debian bookworm has glibc 2.36)
    for minor in range(36, 16, -1):
        args += ["--platform", f"manylinux_2_{minor}_{machine}"]
    args += ["--platform", f"manylinux2014_{machine}", "--platform", f"manylinux2010_{machine}", "--platform", f"manylinux1_{machine}"]
    return args


def resolve_wheelhouse(plan: ImagePlan, cache: Path, progress: Progress) -> Path:
    """A directory of wheels for the model's requirements plus the server's, for the image's Python.

    Resolved by `pip download` on the build host (which may reach the index through a proxy the
    build container cannot) and cached by the requirement set, so unchanged dependencies cost nothing.
    """
    reqs = requirements_of(plan)
    lines = list(reqs.lines) + builtin_requirements(plan.version.entry.manifest.builtin, reqs.lines) + serving_requirements()
    platform_args = _platform_args(plan.python)
    key = hashlib.sha256("\n".join(["v1", plan.python, *platform_args, *lines]).encode()).hexdigest()[:24]
    target = cache / "wheelhouses" / key
    if (target / "requirements.txt").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    progress(f"resolving {len(lines)} requirements into a wheelhouse for Python {plan.python}")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".resolve-") as tmp:
        work = Path(tmp) / "wheels"
        work.mkdir()
        req_file = Path(tmp) / "requirements.txt"
        req_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--progress-bar", "off",
               *platform_args, "--dest", str(work), "-r", str(req_file)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise _resolver_error(plan, reqs, proc.stdout + proc.stderr)
        (work / "requirements.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            os.replace(work, target)
        except OSError:
            if not (target / "requirements.txt").is_file():  # another build won the race: use its copy
                raise
    return target


def _resolver_error(plan: ImagePlan, reqs: Requirements, output: str) -> ExternalToolError:
    """pip's failure in the user's terms: located to the requirements line, naming the index(es) asked."""
    location = Location(reqs.path) if reqs.path else None
    # pip names lines of the temporary file it was given; the model's lines come first, in order
    failure = output[output.find("ERROR:"):] if "ERROR:" in output else ""
    line = re.search(r"\(line (\d+)\)|from line (\d+) of", failure)
    number = reqs.line_of(int(line.group(1) or line.group(2)) - 1) if line else 0
    if number and reqs.path:
        location = Location(reqs.path, number, 1)
    looked = re.search(r"^Looking in indexes: (.+)$", output, re.M)
    indexes = looked.group(1).strip() if looked else "https://pypi.org/simple"
    unreachable = re.search(r"Retrying \(Retry\(|NewConnectionError|Could not fetch URL|Connection refused|Name or service not known", output)
    match = re.search(r"No matching distribution found for ([^\s]+)", output) or re.search(
        r"Could not find a version that satisfies the requirement ([^\s]+)", output
    )
    if match:
        wanted = match.group(1)
        name = _canonical(re.split(r"[<>=!~\[;]", wanted, maxsplit=1)[0])
        if location is None or not location.line:
            for number, text in enumerate(reqs.text.splitlines(), start=1):
                head = re.split(r"[\s<>=!~\[;]", text.strip(), maxsplit=1)[0]
                if head and _canonical(head) == name:
                    location = Location(reqs.path, number, 1)
                    break
        if "from versions: none" in output:
            why = f"not found on the package index(es) used ({indexes})"
            why += ": pip could not reach at least one of them" if unreachable else ", which may not have it or may be unreachable"
        else:
            versions = re.search(r"\(from versions: ([^)]*)\)", output)
            why = f"no binary release matches (versions on the index: {versions.group(1)})" if versions else "no matching binary release"
        return ExternalToolError(
            f"model {plan.model}: no wheel of {wanted} for CPython {plan.python} on Linux: {why}",
            location=location,
            hint="check the name and version on the index; images install wheels only (no source builds); "
                 "PIP_INDEX_URL, PIP_EXTRA_INDEX_URL or --index-url lines in the requirements file choose the index",
        )
    tail = "\n".join(output.strip().splitlines()[-6:])
    return ExternalToolError(
        f"model {plan.model}: resolving dependencies with pip failed:\n{tail}",
        location=location,
        hint=f"pip on the build host must reach the package index(es) ({indexes}; PIP_INDEX_URL, PIP_CERT and proxies are honoured)",
    )


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

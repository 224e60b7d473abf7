"""Model versions -> build contexts -> images in a registry (through adapters.docker).

`plan_images` is pure apart from reading the versions' files; `check_plan` catches what would fail
inside `docker build` (a scoring script that does not compile, conda-only packages) before any
build starts. Contexts live in temporary directories that are always removed. Never prints: the
caller passes a progress callback.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.metadata
import os
import platform
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from gitops_ml import __version__, catalog
from gitops_ml.adapters.docker import DockerEngine
from gitops_ml.errors import (
    ConfigError,
    DockerError,
    ExternalToolError,
    GitopsMlError,
    Location,
    RegistryError,
    ValidationError,
)
from gitops_ml.sources import WorkTree
from gitops_ml.types import Finding, ImageRef, ModelName, RepositorySpec, Version
from gitops_ml.validation import Specs
from gitops_ml.versions import ModelVersion, resolve_model_version

if TYPE_CHECKING:
    from gitops_ml.serving.settings import ServerSettings

Progress = Callable[[str], None]

# Distributions the scoring server imports; the image gets these (with pyproject's bounds), not
# click/GitPython/docker/kubernetes-validate, which only the command line needs.
SERVING_DISTRIBUTIONS = ("starlette", "uvicorn", "httptools", "uvloop", "prometheus-client", "numpy", "pandas", "orjson", "jsonschema", "pyyaml")
VENV = "/opt/gitops-ml/venv"
RUNTIME_DIR = "/opt/gitops-ml/runtime"
USER, UID = "gitops-ml", 10001
# fixed file times make the COPY layers byte-identical however often the context is rewritten
CONTEXT_MTIME = 315532800  # 1980-01-01, the oldest time a zip (wheel) can hold
TEMPLATE = "Dockerfile.j2"
_CONDA_PYTHON = re.compile(r"^(python|pip)\b")


@dataclass(frozen=True)
class BuildOptions:
    """What the user asked for, beyond the repository: overrides and where contexts go."""

    models: tuple[ModelName, ...] = ()
    version: Version | None = None
    registry: str = ""
    base_image: str = ""
    push: bool = False
    context_only: Path | None = None
    cache: Path | None = None
    rebuild: bool = False  # ignore an existing image with the same reference (runtime development)
    no_cache: bool = False  # and the engine's layer cache (benchmarks, suspect caches)
    allow_dirty: bool = False  # push a model whose files differ from HEAD (labelled <sha>-dirty)


@dataclass(frozen=True)
class ImagePlan:
    """One image to build: a model version, its content-addressed reference and what goes into it."""

    version: ModelVersion
    ref: ImageRef
    base_image: str
    python: str
    labels: dict[str, str]
    dirty: tuple[str, ...] = ()  # repository paths of the model that differ from HEAD (or are untracked)

    @property
    def model(self) -> ModelName:
        return self.version.name

    @property
    def model_dir(self) -> str:
        return self.version.entry.dir


@dataclass
class ImageResult:
    """What happened to one image; `status` is built, exists (in the registry or locally) or context."""

    model: str
    version: str
    ref: str
    status: str
    pushed: bool = False
    digest: str = ""
    image_id: str = ""
    bytes_pushed: int = 0
    layers_pushed: int = 0
    seconds: float = 0.0
    context: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    dirty: list[str] = field(default_factory=list)


# --- plan ----------------------------------------------------------------------------------


def _override_base(version: ModelVersion, base_image: str) -> ModelVersion:
    entry = version.entry
    manifest = dataclasses.replace(entry.manifest, base_image=base_image)
    return dataclasses.replace(version, entry=dataclasses.replace(entry, manifest=manifest))


def effective_repository(repo: RepositorySpec, options: BuildOptions) -> RepositorySpec:
    """The repository settings with --registry and --base-image applied (they change image refs)."""
    changes: dict[str, str] = {}
    if options.registry:
        changes["registry"] = options.registry.rstrip("/")
    if options.base_image:
        changes["base_image"] = options.base_image
    return dataclasses.replace(repo, **changes) if changes else repo  # type: ignore[arg-type]


def plan_images(root: Path, specs: Specs, options: BuildOptions, *, revision: str = "") -> list[ImagePlan]:
    """One plan per requested model (all models when none is named), at the requested version."""
    repo = effective_repository(specs.repository, options)
    names = options.models or tuple(sorted(specs.models))
    plans = []
    worktree = WorkTree(root)
    for name in names:
        mv = resolve_model_version(root, specs, name, options.version, worktree=worktree)
        if options.base_image:
            mv = _override_base(mv, options.base_image)
        manifest, spec = mv.entry.manifest, mv.entry.spec
        ref = mv.image_ref(repo)
        base = manifest.base_image or repo.base_image
        labels = {
            "org.opencontainers.image.source": repo.source_url,
            "org.opencontainers.image.revision": mv.commit or revision,
            "org.opencontainers.image.version": str(spec.version),
            "org.opencontainers.image.title": str(spec.name),
            "org.opencontainers.image.description": spec.description,
            "org.opencontainers.image.base.name": base,
            "dev.gitops-ml.model": str(spec.name),
            "dev.gitops-ml.version": str(spec.version),
            "dev.gitops-ml.artifact.uri": spec.artifact.uri,
            "dev.gitops-ml.artifact.sha256": spec.artifact.sha256,
            "dev.gitops-ml.runtime": __version__,
        }
        plans.append(ImagePlan(mv, ref, base, manifest.python, {k: v for k, v in labels.items() if v}))
    return plans


# --- checks before any build ---------------------------------------------------------------


def check_plan(plans: Sequence[ImagePlan]) -> None:
    """Compile every Python file of the scoring code and read the dependency list, for all plans.

    Raises ValidationError with every finding (file:line:col) so that nothing fails later inside
    a container build where the message would be buried in build output.
    """
    findings: list[Finding] = []
    for plan in plans:
        for rel, data in sorted(plan.version.files().items()):
            if rel.endswith(".py"):
                path = f"{plan.model_dir}/{rel}"
                try:
                    ast.parse(data, filename=path)
                except SyntaxError as exc:
                    findings.append(Finding(Location(path, exc.lineno or 1, exc.offset or 1), f"syntax error: {exc.msg}"))
        try:
            requirements_of(plan)
        except ValidationError as exc:
            findings.extend(f for f in exc.findings if isinstance(f, Finding))
    if findings:
        # the command line prints the error's hint, not each finding's: say how to proceed once per kind
        hint = "; ".join(dict.fromkeys(f.hint for f in findings if f.hint))
        error = ValidationError(findings, f"{len(findings)} problem(s) in the scoring code or its dependencies")
        error.hint = hint
        raise error


@dataclass(frozen=True)
class Requirements:
    """pip requirement lines and the file they came from (for locating resolver errors)."""

    lines: tuple[str, ...]
    path: str
    text: str
    numbers: tuple[int, ...] = ()  # the source line of each entry of `lines` (0: not known)

    def line_of(self, index: int) -> int:
        return self.numbers[index] if 0 <= index < len(self.numbers) else 0


def requirements_of(plan: ImagePlan) -> Requirements:
    """The model's pip requirements, each line checked: ValidationError with every located finding."""
    manifest = plan.version.entry.manifest
    files = plan.version.files()
    if manifest.requirements:
        rel = posixpath.normpath(manifest.requirements)
        path = f"{plan.model_dir}/{rel}"
        text = files[rel].decode("utf-8")
        numbered = list(_requirement_lines(text))
        findings = [f for number, line in numbered if (f := check_requirement_line(line, Location(path, number, 1)))]
        if findings:
            raise ValidationError(findings)
        return Requirements(tuple(line for _, line in numbered), path, text, tuple(number for number, _ in numbered))
    if manifest.conda:
        rel = posixpath.normpath(manifest.conda)
        return _conda_requirements(f"{plan.model_dir}/{rel}", files[rel].decode("utf-8"))
    return Requirements((), "", "")


# pip's own comment rule: `#` at the start of a line or after whitespace
_COMMENT = re.compile(r"(^|\s+)#.*$")


def _requirement_lines(text: str) -> Iterable[tuple[int, str]]:
    """(line number, requirement) for every non-empty line, with backslash continuations joined."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.endswith("\\") and not _COMMENT.search(raw):
            pending += raw[:-1]
            continue
        line = _COMMENT.sub("", pending + raw).strip()
        pending = ""
        if line:
            yield start, line
    if pending.strip():
        yield start, pending.strip()


# options a requirements file may carry: where to look for wheels (the URLs are the user's)
_INDEX_OPTIONS = {"-i", "--index-url", "--extra-index-url", "--trusted-host", "--pre", "--prefer-binary", "--no-index"}
_INCLUDE_OPTIONS = {"-r", "--requirement", "-c", "--constraint"}
_EDITABLE_OPTIONS = {"-e", "--editable"}
_FIND_LINKS_OPTIONS = {"-f", "--find-links"}
# options that follow a requirement on its line (`pkg==1.0 --hash=sha256:...`)
_PER_REQUIREMENT = re.compile(r"\s--?[A-Za-z]")
_LOCAL_OR_URL = re.compile(r"^(\.|/|~|[A-Za-z]:\\)|://|\\|/|\.(whl|zip|tar\.gz|tar\.bz2|tgz)$")
PUBLISH_HINT = (
    "images install wheels resolved from the package index on this machine; publish the package to an index "
    "(and name it with --index-url/--extra-index-url in this file), or put its source in the model directory "
    "and list it under `include:` in manifest.yaml (score.py's directory is importable in the image)"
)


def _option(line: str) -> tuple[str, str]:
    """(`--name`, value) of an option line; `-iURL`, `-i URL` and `--index-url=URL` alike."""
    if line.startswith("--"):
        name = re.split(r"[=\s]", line, maxsplit=1)[0]
        return name, line[len(name):].lstrip("= \t")
    return line[:2], line[2:].lstrip("= \t")


def check_requirement_line(line: str, where: Location) -> Finding | None:
    """Why pip must not be given this requirements line, located; None when it is fine.

    pip would resolve local paths, `-r`/`-c` files and `file:` links against the temporary
    directory the wheelhouse is resolved in, and clone `-e` requirements into gitops-ml's own
    environment, so those are refused here rather than failing (or succeeding) somewhere else.
    """
    from packaging.requirements import InvalidRequirement, Requirement  # noqa: PLC0415 - only builds parse requirements

    if line.startswith("-"):
        name, value = _option(line)
        if name in _INDEX_OPTIONS:
            return None
        if name in _FIND_LINKS_OPTIONS and re.match(r"https?://", value):
            return None
        if name in _INCLUDE_OPTIONS:
            return Finding(where, f"{name} {value}: a requirements file cannot include another file here",
                           hint="list those requirements in this file (it is the only one the image build reads)")
        if name in _EDITABLE_OPTIONS:
            return Finding(where, f"editable requirement {value!r}: images are built from the package index (a wheelhouse), not from source checkouts",
                           hint=PUBLISH_HINT)
        if name in _FIND_LINKS_OPTIONS:
            return Finding(where, f"{name} {value}: a local wheel directory is not available to the image build",
                           hint=PUBLISH_HINT)
        return Finding(where, f"unsupported option {name} in a requirements file",
                       hint="requirements files may name packages and --index-url/--extra-index-url/--trusted-host/--pre/--prefer-binary")
    match = _PER_REQUIREMENT.search(line)
    spec = line[: match.start()].strip() if match else line
    if match and "--hash" in line[match.start():]:
        # one --hash turns on pip's hash-checking mode for every requirement, and the server's own
        # requirements added to the wheelhouse carry no hashes, so pip would always refuse
        return Finding(where, f"--hash on {spec!r}: hash-checking is not supported for image dependencies",
                       hint="remove the --hash options; pin the version with == (the wheelhouse is resolved once per requirement set and cached)")
    try:
        req = Requirement(spec)
    except InvalidRequirement as exc:
        if _LOCAL_OR_URL.search(spec.split(";", 1)[0].strip()):
            return Finding(where, f"{spec!r} is a local path or URL: images are built from the package index (a wheelhouse)", hint=PUBLISH_HINT)
        return Finding(where, f"invalid requirement {spec!r}: {str(exc).splitlines()[0]}",
                       hint="a line names a package with optional extras, version and marker, e.g. `numpy>=1.26`")
    if req.url:
        return Finding(where, f"{req.name} @ {req.url}: URL and VCS requirements are not installed; images are built from the package index (a wheelhouse)",
                       hint=PUBLISH_HINT)
    return None


def _conda_requirements(path: str, text: str) -> Requirements:
    from gitops_ml.loading import parse_yaml  # noqa: PLC0415 - only conda files need the located loader

    doc = parse_yaml(path, text.encode("utf-8"))
    pip: list[str] = []
    findings = []
    for i, dep in enumerate((doc.data or {}).get("dependencies") or []):
        if isinstance(dep, dict) and "pip" in dep:
            for j, entry in enumerate(dep["pip"] or []):
                # the same rules as a requirements.txt line, located at the entry
                found = check_requirement_line(str(entry).strip(), doc.locate(["dependencies", i, "pip", j]))
                if found is not None:
                    findings.append(found)
                pip.append(str(entry))
        elif isinstance(dep, str) and not _CONDA_PYTHON.match(dep):
            findings.append(
                Finding(
                    doc.locate(["dependencies", i]),
                    f"conda-only package {dep!r}: images are built with pip from a wheelhouse",
                    hint="move it to the `pip:` section, or use a requirements file",
                )
            )
    if findings:
        raise ValidationError(findings)
    return Requirements(tuple(pip), path, "\n".join(pip))


# --- wheelhouse and runtime wheel ----------------------------------------------------------


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
    lines = list(reqs.lines) + serving_requirements()
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
    root = Path(__file__).resolve().parent.parent
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


# --- context ---------------------------------------------------------------------------------


def _docker_quote(value: object) -> str:
    text = str(value)
    if "\n" in text or "\r" in text:
        text = " ".join(text.split())
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def render_dockerfile(plan: ImagePlan) -> str:
    """Dockerfile text from templates/Dockerfile.j2 (StrictUndefined: a missing value is an error)."""
    import jinja2  # noqa: PLC0415 - imported on use: `build --push` of an unchanged model must start fast

    from gitops_ml.serving import settings as serving  # noqa: PLC0415 - the serving package imports numpy

    directory = catalog.data_dir("templates")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)), undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["docker_quote"] = _docker_quote
    manifest = plan.version.entry.manifest
    try:
        return env.get_template(TEMPLATE).render(
            runtime_version=__version__,
            model=plan.model,
            version=str(plan.version.version),
            base_image=plan.base_image,
            venv=VENV,
            runtime_dir=RUNTIME_DIR,
            user=USER,
            uid=UID,
            model_dir=serving.MODEL_DIR,
            port=serving.PORT,
            readiness_path=serving.READINESS_PATH,
            env=dict(manifest.env),
            labels=plan.labels,
        )
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{directory / TEMPLATE}:{exc.lineno}: template error: {exc.message}") from exc
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"{directory / TEMPLATE}: template error: {exc.message}") from exc


def _put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, 0o644)


def _fix_times(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), (CONTEXT_MTIME, CONTEXT_MTIME), follow_symlinks=False)
        os.chmod(dirpath, 0o755)
    os.utime(root, (CONTEXT_MTIME, CONTEXT_MTIME))


def fetch_artifact(plan: ImagePlan, cache: Path, progress: Progress) -> Path:
    from gitops_ml.adapters import artifacts  # noqa: PLC0415 - imports httpx
    spec = plan.version.entry.spec
    where = Location(f"{plan.model_dir}/model.yaml")
    request = artifacts.ArtifactRequest(str(plan.model), spec.artifact, where, plan.version.files())
    return artifacts.fetch_artifact(request, cache=cache, progress=progress)


def write_context(plan: ImagePlan, dest: Path, *, wheelhouse: Path, runtime: Path, artifact: Path) -> None:
    """Lay out the build context in dest (which must not exist yet).

    model/code holds the scoring code and data files; model/artifact holds model.yaml and the
    artifact, so a retrained model changes only the last layer.
    """
    spec = plan.version.entry.spec
    artifact_rel = posixpath.normpath(spec.artifact.path)
    artifact_src = posixpath.normpath(spec.artifact.uri) if spec.artifact.scheme == "path" else None
    dest.mkdir(parents=True)
    _put(dest / "Dockerfile", render_dockerfile(plan).encode("utf-8"))
    _put(dest / ".dockerignore", b"# the context holds only what the image needs\n")
    for wheel in sorted(wheelhouse.glob("*.whl")):
        _put(dest / "wheels" / "dependencies" / wheel.name, wheel.read_bytes())
    _put(dest / "wheels" / "runtime" / runtime.name, runtime.read_bytes())
    for rel, data in sorted(plan.version.files().items()):
        if rel in (artifact_src, artifact_rel):
            continue
        layer = "artifact" if rel == "model.yaml" else "code"
        _put(dest / "model" / layer / rel, data)
    _put(dest / "model" / "artifact" / artifact_rel, artifact.read_bytes())
    _fix_times(dest)


def prepare_context(plan: ImagePlan, dest: Path, cache: Path, progress: Progress) -> dict[str, float]:
    """Fetch, resolve and write everything the build needs into dest; seconds per step."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    artifact = fetch_artifact(plan, cache, progress)
    timings["artifact"] = time.perf_counter() - start
    start = time.perf_counter()
    wheelhouse = resolve_wheelhouse(plan, cache, progress)
    runtime = runtime_wheel(cache, progress)
    timings["wheelhouse"] = time.perf_counter() - start
    start = time.perf_counter()
    write_context(plan, dest, wheelhouse=wheelhouse, runtime=runtime, artifact=artifact)
    timings["context"] = time.perf_counter() - start
    return timings


def write_contexts(plans: Sequence[ImagePlan], out: Path, progress: Progress, cache: Path | None = None) -> list[ImageResult]:
    """--context-only: one directory per model under out, all of them or none.

    Every target is checked before anything is written, the contexts are prepared in a temporary
    sibling and moved into place only when all of them are ready; a failure leaves out as it was
    (and does not leave out behind when this call created it).
    """
    cache = cache or _cache_root()
    taken = [str(out / plan.model) for plan in plans if (out / plan.model).exists() or (out / plan.model).is_symlink()]
    if taken:
        raise ConfigError(f"{', '.join(taken)} already exist{'s' if len(taken) == 1 else ''}; remove {'it' if len(taken) == 1 else 'them'} or choose another --context-only directory")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".gitops-ml-contexts-"))
    results, moved = [], []
    try:
        for plan in plans:
            timings = prepare_context(plan, staging / plan.model, cache, _prefixed(progress, plan.model))
            results.append(ImageResult(plan.model, str(plan.version.version), plan.ref, "context", context=str(out / plan.model), timings=timings))
        for plan in plans:
            os.rename(staging / plan.model, out / plan.model)  # a non-empty directory that appeared meanwhile makes this fail, never merges
            moved.append(out / plan.model)
    except BaseException:
        for path in moved:
            shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    for plan in plans:
        progress(f"{plan.model}: wrote {out / plan.model} (docker build -t {plan.ref} {out / plan.model})")
    return results


def _cache_root() -> Path:
    from gitops_ml.adapters.artifacts import cache_root  # noqa: PLC0415

    return cache_root()


def _prefixed(progress: Progress, model: str) -> Progress:
    return lambda line: progress(f"{model}: {line}")


# --- build and push --------------------------------------------------------------------------


def ensure_base_image(engine: DockerEngine, base: str) -> None:
    """Fail early, with a hint, when the base image is neither local nor in its registry."""
    if engine.local_image_id(base):
        return
    try:
        remote = engine.remote_digest(base)
    except DockerError as exc:
        raise DockerError(f"base image {base} is not on this machine and its registry cannot be asked: {exc.message}", hint=BASE_HINT) from exc
    if remote is None:
        raise DockerError(f"base image {base} does not exist (not on this machine, not in its registry)", hint=BASE_HINT)


BASE_HINT = (
    "set image.baseImage in gitops-ml.yaml (or pass --base-image) to an image with python3 and python3-venv; "
    "offline, `bash .ci/setup-docker.sh` makes gitops-ml-base:bookworm with mmdebstrap"
)


def build_image(engine: DockerEngine, plan: ImagePlan, options: BuildOptions, progress: Progress) -> ImageResult:
    """Build (unless the reference already exists) and push one image."""
    started = time.perf_counter()
    result = ImageResult(plan.model, str(plan.version.version), plan.ref, "built")
    say = _prefixed(progress, plan.model)
    if options.push and not (options.rebuild or options.no_cache):
        remote = engine.remote_digest(plan.ref)
        if remote:
            result.status, result.digest = "exists", remote
            result.seconds = time.perf_counter() - started
            say(f"{plan.ref} is already in the registry ({remote}); nothing to build or push")
            return result
    local = None if options.rebuild or options.no_cache else engine.local_image_id(plan.ref)
    if local:
        result.status, result.image_id = "exists", local
        say(f"{plan.ref} already built ({local[:19]})")
    else:
        ensure_base_image(engine, plan.base_image)
        cache = options.cache or _cache_root()
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"gitops-ml-build-{plan.model}-") as tmp:
            result.timings = prepare_context(plan, Path(tmp) / "context", cache, say)
            step = time.perf_counter()
            say(f"building {plan.ref}")
            result.image_id = engine.build(Path(tmp) / "context", plan.ref, progress=say, nocache=options.no_cache)
            result.timings["build"] = time.perf_counter() - step
    if options.push:
        step = time.perf_counter()
        say(f"pushing {plan.ref}")
        report = engine.push(plan.ref, progress=say)
        result.timings["push"] = time.perf_counter() - step
        result.pushed = True
        result.digest = report.digest or engine.repo_digest(plan.ref)
        result.bytes_pushed, result.layers_pushed = report.bytes_pushed, report.layers_pushed
    result.seconds = time.perf_counter() - started
    return result


def current_revision(root: Path) -> str:
    """HEAD's commit, for the revision label of images built from the working tree ("" without git)."""
    try:
        from gitops_ml.adapters import git as gitx  # noqa: PLC0415 - git is optional for a build

        return str(gitx.open_repo(root).head.commit.hexsha)
    except Exception:  # noqa: BLE001 - not a git repository, or no commit yet
        return ""


REVISION_LABEL = "org.opencontainers.image.revision"


def mark_dirty(root: Path, plans: Sequence[ImagePlan]) -> list[ImagePlan]:
    """Plans of the working tree whose model files differ from HEAD get `dirty` and a `<sha>-dirty` revision.

    HEAD's commit does not hold the code such an image carries, and its content tag is not the one
    the committed deploy/ references. Versions read from history, and trees outside git, are left as they are.
    """
    if not any(plan.version.commit is None for plan in plans):
        return list(plans)
    try:
        from gitops_ml.adapters import git as gitx  # noqa: PLC0415 - git is optional for a build

        repo = gitx.open_repo(root)
        prefix = gitx.repo_prefix(repo, root)
        if not repo.head.is_valid():
            return list(plans)
    except GitopsMlError:
        return list(plans)
    out = []
    for plan in plans:
        if plan.version.commit is not None:
            out.append(plan)
            continue
        spec = posixpath.join(prefix, plan.model_dir) if prefix else plan.model_dir
        status = gitx.run_git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", spec)
        paths = sorted({entry[3:] for entry in status.decode("utf-8", "replace").split("\0") if len(entry) > 3 and entry[2] == " "})
        rel = [p[len(prefix) + 1:] if prefix and p.startswith(prefix + "/") else p for p in paths]
        if not rel:
            out.append(plan)
            continue
        labels = dict(plan.labels)
        if labels.get(REVISION_LABEL):
            labels[REVISION_LABEL] += "-dirty"
        out.append(dataclasses.replace(plan, labels=labels, dirty=tuple(rel)))
    return out


def _dirty_list(paths: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(paths[:limit])
    shown += f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return shown + (" differs" if len(paths) == 1 else " differ")


def build_images(root: Path, specs: Specs, options: BuildOptions, progress: Progress) -> list[ImageResult]:
    """The use case behind `gitops-ml build`: plan, check, then build/push (or write contexts).

    A push of a model whose files differ from HEAD is refused (RegistryError) unless allow_dirty;
    otherwise such a model is built with a warning and a `<sha>-dirty` revision label.
    """
    plans = mark_dirty(root, plan_images(root, specs, options, revision=current_revision(root)))
    dirty = [plan for plan in plans if plan.dirty]
    if options.push and dirty and not options.allow_dirty and options.context_only is None:
        raise RegistryError(
            "; ".join(f"model {plan.model}: {_dirty_list(plan.dirty)} from HEAD" for plan in dirty)
            + ": the pushed image would carry code no commit holds, under a tag the committed deploy/ does not reference",
            hint="commit the changes first (CI builds from the commit), or pass --allow-dirty to push anyway",
        )
    for plan in dirty:
        progress(f"{plan.model}: warning: {_dirty_list(plan.dirty)} from HEAD; the image is labelled revision "
                 f"{plan.labels.get(REVISION_LABEL, '(none)')} and its tag is not the one the committed deploy/ references")
    check_plan(plans)
    if options.context_only is not None:
        results = write_contexts(plans, options.context_only, progress, options.cache)
    else:
        engine = DockerEngine.connect()
        try:
            results = [build_image(engine, plan, options, progress) for plan in plans]
        finally:
            engine.close()
    for plan, result in zip(plans, results):
        result.dirty = list(plan.dirty)
    return results


# --- run an image locally (`gitops-ml run-image`) ------------------------------------------


@dataclass
class RunResult:
    """A local container's answer to the model's sample, and how to repeat the call."""

    model: str
    ref: str
    url: str
    status: int
    body: str
    curl: str
    container: str
    kept: bool
    keys_dir: str


def run_image(
    plan: ImagePlan,
    settings: ServerSettings,
    *,
    progress: Progress,
    keep: bool = False,
    host_port: int | None = None,
    timeout: float = 180.0,
) -> RunResult:
    """Start the image with settings and a fresh API key, wait for readiness, score the sample."""
    import secrets  # noqa: PLC0415

    import httpx  # noqa: PLC0415

    from gitops_ml.serving import settings as serving  # noqa: PLC0415

    manifest = plan.version.entry.manifest
    sample = plan.version.files().get(posixpath.normpath(manifest.sample)) if manifest.sample else None
    if sample is None:
        raise ConfigError(f"model {plan.model} has no sample in its manifest; run-image scores the sample", location=Location(f"{plan.model_dir}/manifest.yaml"))
    engine = DockerEngine.connect()
    container = None
    keys = Path(tempfile.mkdtemp(prefix=f"gitops-ml-keys-{plan.model}-"))
    try:
        if not engine.local_image_id(plan.ref):
            if engine.remote_digest(plan.ref) is None:
                raise DockerError(f"{plan.ref} is neither built here nor in its registry", hint=f"build it first: gitops-ml build --model {plan.model}")
            progress(f"pulling {plan.ref}")
            engine.pull(plan.ref, progress=progress)
        key = secrets.token_urlsafe(32)
        os.chmod(keys, 0o755)
        _put(keys / "primary", key.encode())
        tmpfs = {"/tmp": "mode=1777"}
        if settings.capture_enabled:
            tmpfs[settings.capture_dir] = "mode=1777"
        container = engine.run(plan.ref, env=settings.to_env(), port=settings.port, host_port=host_port, mounts={str(keys): settings.keys_dir}, tmpfs=tmpfs)
        base = f"http://127.0.0.1:{container.host_port}"
        progress(f"started {container.name} ({plan.ref}) on {base}; waiting for {serving.READINESS_PATH}")
        _wait_ready(engine, container.id, base + serving.READINESS_PATH, timeout, script=Location(f"{plan.model_dir}/{manifest.script}"))
        headers = {"Content-Type": "application/json"}
        if settings.auth_enabled:
            headers["Authorization"] = f"Bearer {key}"
        url = base + serving.SCORE_PATH
        response = httpx.post(url, content=sample, headers=headers, timeout=max(30.0, settings.request_timeout * 2))
        auth = f" -H 'Authorization: Bearer {key}'" if settings.auth_enabled else ""
        curl = f"curl -sS -X POST {url}{auth} -H 'Content-Type: application/json' --data @{plan.model_dir}/{manifest.sample}"
        return RunResult(str(plan.model), plan.ref, url, response.status_code, response.text, curl, container.name, keep, str(keys))
    except httpx.HTTPError as exc:
        raise DockerError(f"the container of {plan.ref} did not answer: {exc}") from exc
    finally:
        if container is not None and not keep:
            engine.remove_container(container.id)
        if not keep:
            shutil.rmtree(keys, ignore_errors=True)
        engine.close()


def _wait_ready(engine: DockerEngine, container_id: str, url: str, timeout: float, *, script: Location) -> None:
    """Until /readyz answers 200; a failed init() (the server says so at once) stops the wait."""
    import httpx  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while True:
        status, code = engine.container_state(container_id)
        if status in {"exited", "dead"}:
            logs = engine.container_logs(container_id)
            raise DockerError(f"the container exited with code {code} before it was ready", hint="its last output:\n" + logs.strip()[-2000:])
        try:
            answer = httpx.get(url, timeout=2.0)
            if answer.status_code == 200:
                return
            state = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else {}
            if isinstance(state, dict) and state.get("status") == "failed":
                raise GitopsMlError(
                    f"init() failed in the container, which stays unready: {state.get('error', 'no reason given')}",
                    location=script,
                    hint="`gitops-ml serve` on the model directory shows the same failure with its traceback",
                )
        except (httpx.HTTPError, ValueError):
            pass
        if time.monotonic() > deadline:
            logs = engine.container_logs(container_id)
            raise DockerError(f"the container was not ready within {timeout:.0f} s", hint="its last output:\n" + logs.strip()[-2000:])
        time.sleep(0.25)  # polling interval while init() loads the model, bounded by the deadline

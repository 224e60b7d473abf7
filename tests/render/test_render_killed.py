"""A render killed at any moment of its write phase (kill -9: no cleanup runs) is completed by the
next `gitops-ml render`, which never takes its own half-done work for files it did not write."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from render.render_helpers import run
from support import copy_example

# Runs `gitops-ml render ROOT` in a child that dies (os._exit, as under kill -9) in the middle of
# its N-th file write: after the temporary file got half its bytes, or, with "after", once the
# file is in place.
KILLER = """
import os, sys
from gitops_ml.render import writing
from gitops_ml.cli.main import main

limit, where = int(sys.argv[1]), sys.argv[2]
real = writing._write
count = 0

def dying(target, data, *, replace):
    global count
    count += 1
    if count == limit:
        if where == "half":
            with open(target.with_name("." + target.name + writing.TEMPORARY_SUFFIX), "wb") as fh:
                fh.write(data[: len(data) // 2])
            os._exit(137)
        real(target, data, replace=replace)
        os._exit(137)
    real(target, data, replace=replace)

writing._write = dying
main(["render", sys.argv[3]])
"""


def _render_killed(root: Path, limit: int, where: str) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(limit), where, str(root)], capture_output=True, text=True, timeout=120
    )
    return proc.returncode


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def clean(tmp_path: Path) -> dict[str, bytes]:
    """The render root as an uninterrupted render of the example writes it."""
    root = tmp_path / "clean"
    copy_example(root, without=("deploy",))
    assert run("render", root).exit_code == 0
    return _tree(root / "deploy")


@pytest.mark.parametrize("where", ["half", "after"])
@pytest.mark.parametrize("limit", [1, 2, 7, 19, 35])
def test_a_first_render_killed_mid_write_is_completed_by_the_next(
    tmp_path: Path, clean: dict[str, bytes], limit: int, where: str
) -> None:
    root = tmp_path / "repo"
    copy_example(root, without=("deploy",))
    assert _render_killed(root, limit, where) == 137
    again = run("render", root)
    assert again.exit_code == 0, again.output
    assert "did not write" not in again.output
    assert _tree(root / "deploy") == clean
    assert run("render", root, "--check").exit_code == 0


@pytest.mark.parametrize("limit", [1, 2, 3, 4])
def test_a_re_render_killed_while_replacing_and_removing_is_completed(tmp_path: Path, limit: int) -> None:
    root = tmp_path / "repo"
    copy_example(root)
    # staging's digits leaves (its files become extra) and prod's iris changes (its files become stale)
    (root / "deployments" / "staging" / "digits.yaml").unlink()
    prod = root / "deployments" / "prod" / "iris.yaml"
    prod.write_text(prod.read_text().replace("minReplicas: 3", "minReplicas: 4"))
    assert _render_killed(root, limit, "half") == 137
    # and the inputs change again before the next render
    prod.write_text(prod.read_text().replace("minReplicas: 4", "minReplicas: 5"))
    again = run("render", root)
    assert again.exit_code == 0, again.output
    assert not (root / "deploy" / "apps" / "staging" / "digits").exists()
    assert not [p for p in (root / "deploy").rglob("*") if p.name.endswith(".gitops-ml-tmp")]
    assert "minReplicas: 5" in (root / "deploy" / "apps" / "prod" / "iris" / "hpa.yaml").read_text()
    assert run("render", root, "--check").exit_code == 0


def test_check_names_a_leftover_temporary_file(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    copy_example(root)
    (root / "deploy" / "apps" / ".x.yaml.gitops-ml-tmp").write_text("half")
    checked = run("render", root, "--check")
    assert checked.exit_code == 1
    assert "deploy/apps/.x.yaml.gitops-ml-tmp: is a temporary file of an interrupted render" in checked.stderr
    assert run("render", root).exit_code == 0
    assert not (root / "deploy" / "apps" / ".x.yaml.gitops-ml-tmp").exists()

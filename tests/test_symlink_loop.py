"""A loop of symbolic links in a model directory is a located finding in every verb that reads the
model, never an internal error."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from click.testing import CliRunner
from support import EXAMPLE

from gitops_ml.cli.main import cli


def test_a_symlink_loop_is_located_in_validate_render_and_build(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo)
    os.symlink("b", repo / "models" / "iris" / "a")
    os.symlink("a", repo / "models" / "iris" / "b")
    for args in (
        ["validate", str(repo)],
        ["render", str(repo)],
        ["build", str(repo), "--context-only", str(tmp_path / "ctx")],
    ):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, (args, result.output)
        assert (
            "error: models/iris/a: symbolic link to b leads to no file (a loop of links, or a missing target)"
            in result.stderr
        )
        assert "internal error" not in result.output

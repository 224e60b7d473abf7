"""The wheel carries the schemas and templates: build it, install it into a fresh virtual
environment, and validate and scaffold from there (not from this checkout)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support import EXAMPLE, ROOT


@pytest.mark.slow
def test_wheel_installs_and_validates_the_example(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(dist.glob("gitops_ml-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "gitops_ml/_data/schemas/deployment.schema.json" in names
    assert "gitops_ml/_data/templates/init/models/iris/score.py" in names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True)
    exe = str(venv / "bin/gitops-ml")
    env = {**os.environ, "PYTHONPATH": ""}
    # run from a directory outside the checkout so nothing can be found in the source tree
    result = subprocess.run([exe, "validate", str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "ok:" in result.stdout
    result = subprocess.run([exe, "init", str(tmp_path / "new")], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    result = subprocess.run(
        [exe, "validate", str(tmp_path / "new")], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    where = subprocess.run(
        [str(venv / "bin/python"), "-c", "import gitops_ml.repo.catalog as c; print(c.data_dir('schemas'))"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert str(venv) in where.stdout

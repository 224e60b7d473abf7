"""`gitops-ml predict`: one request scored without a server, by the server's own code, in this
Python (--env-manager local) or in the model's own environment made from its requirements (venv)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import EXAMPLE

from gitops_ml.cli.main import cli


def _predict(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gitops_ml", "predict", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
    )


def test_local_predict_answers_what_the_server_answers() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "predict",
            str(EXAMPLE / "models" / "iris"),
            "--data",
            f"@{EXAMPLE / 'models' / 'iris' / 'sample.json'}",
            "--env-manager",
            "local",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"predictions": [0, 1, 2]}


def test_an_input_the_schema_refuses_is_a_located_message_and_exit_1() -> None:
    result = CliRunner().invoke(
        cli, ["predict", str(EXAMPLE / "models" / "iris"), "--data", '{"data": [[1, 2]]}', "--env-manager", "local"]
    )
    assert result.exit_code == 1, result.output
    assert "error: the model answered 4" in result.stderr


def test_a_failing_init_names_score_py(tmp_path: Path) -> None:
    model = tmp_path / "iris"
    shutil.copytree(EXAMPLE / "models" / "iris", model)
    (model / "score.py").write_text(
        "def init():\n    raise RuntimeError('no weights')\n\ndef run(data):\n    return data\n"
    )
    result = CliRunner().invoke(
        cli, ["predict", str(model), "--data", f"@{model / 'sample.json'}", "--env-manager", "local"]
    )
    assert result.exit_code == 1, result.output
    assert (
        "error: the model did not load:" in result.stderr
        and "score.py:2:" in result.stderr
        and "RuntimeError: no weights" in result.stderr
    )
    assert '"level"' not in result.stderr  # no server log lines in a one-off answer


@pytest.mark.slow
def test_the_model_environment_is_made_once_and_scores_both_example_models(tmp_path: Path) -> None:
    """venv (the default) makes each model's environment from its requirements, then reuses it;
    this process's packages (scikit-learn here) are not what the model runs with."""
    env = {**__import__("os").environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("GITOPS_ML_ENV_MANAGER", None)  # the default, venv
    iris = _predict(EXAMPLE / "models" / "iris", "--data", f"@{EXAMPLE / 'models' / 'iris' / 'sample.json'}", env=env)
    assert iris.returncode == 0, iris.stderr
    assert json.loads(iris.stdout) == {"predictions": [0, 1, 2]}
    assert "making the model's environment" in iris.stderr
    again = _predict(EXAMPLE / "models" / "iris", "--data", f"@{EXAMPLE / 'models' / 'iris' / 'sample.json'}", env=env)
    assert again.returncode == 0 and "making the model's environment" not in again.stderr
    envs = list((tmp_path / "cache" / "gitops-ml" / "envs").iterdir())
    assert len(envs) == 1
    frozen = subprocess.run(
        [str(envs[0] / "bin" / "python"), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True
    )
    names = {p["name"].lower() for p in json.loads(frozen.stdout)} if frozen.returncode == 0 else set()
    if names:  # uv environments have no pip; the marker file lists what was installed
        assert "click" not in names  # the command line's dependencies stay out of a model's environment
    digits = _predict(
        EXAMPLE / "models" / "digits", "--data", f"@{EXAMPLE / 'models' / 'digits' / 'sample.json'}", env=env
    )
    assert digits.returncode == 0, digits.stderr
    assert "digit" in json.loads(digits.stdout)


@pytest.mark.slow
def test_what_score_py_prints_stays_out_of_the_answer_in_the_models_environment(tmp_path: Path) -> None:
    model = tmp_path / "iris"
    shutil.copytree(EXAMPLE / "models" / "iris", model)
    score = model / "score.py"
    score.write_text(
        score.read_text().replace("def run(data):", "def run(data):\n    print('more noise')", 1)
        + "\nprint('loaded')\n"
    )
    assert "print('more noise')" in score.read_text()
    env = {k: v for k, v in __import__("os").environ.items() if k != "GITOPS_ML_ENV_MANAGER"}
    result = _predict(model, "--data", f"@{model / 'sample.json'}", "--env-manager", "venv", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"predictions": [0, 1, 2]}
    assert "more noise" not in result.stdout and "loaded" not in result.stdout


def test_a_run_that_raises_shows_its_traceback(tmp_path: Path) -> None:
    """predict has no server log to look in: the traceback of a failing run() is printed."""
    model = tmp_path / "iris"
    shutil.copytree(EXAMPLE / "models" / "iris", model)
    score = model / "score.py"
    score.write_text(score.read_text().replace("def run(data):", "def run(data):\n    1 / 0", 1))
    result = CliRunner().invoke(
        cli, ["predict", str(model), "--data", f"@{model / 'sample.json'}", "--env-manager", "local"]
    )
    assert result.exit_code == 1, result.output
    assert "ZeroDivisionError: division by zero" in result.stderr and "score.py" in result.stderr

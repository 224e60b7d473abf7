"""The command line as a whole: every verb and option has help text, `python -m gitops_ml` works,
and a user's mistake gives a message and an exit code, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from gitops_ml.cli.main import COMMANDS, cli


def _walk(command: click.Command, path: str):  # type: ignore[no-untyped-def]
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, f"{path} {name} cannot be loaded"
            yield from _walk(sub, f"{path} {name}")


def test_every_command_and_option_has_help_text() -> None:
    ctx = click.Context(cli)
    assert sorted(cli.list_commands(ctx)) == sorted(COMMANDS), "a verb in COMMANDS has no module yet"
    missing = []
    for path, command in _walk(cli, "gitops-ml"):
        if not (command.help or command.short_help):
            missing.append(path)
        for param in command.params:
            if isinstance(param, click.Option) and not param.help and param.name not in {"help"}:
                missing.append(f"{path} {param.opts[0]}")
    assert missing == []


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gitops_ml", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("gitops-ml, version ")


def test_missing_repository_directory_is_a_usage_error(tmp_path: Path) -> None:
    calls = [[verb, str(tmp_path / "nope")] for verb in ("validate", "render", "models", "tag", "diff", "build")]
    calls += [
        ["history", "iris", "-C", str(tmp_path / "nope")],
        ["bump", "iris", "--repo", str(tmp_path / "nope")],
        ["promote", "iris", "--to", "prod", "--repo", str(tmp_path / "nope")],
    ]
    for args in calls:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, args
        assert f"directory {tmp_path / 'nope'} does not exist" in result.output, result.output


def test_unknown_verb_suggests() -> None:
    result = CliRunner().invoke(cli, ["valdate"])
    assert result.exit_code == 2
    assert "valdate" in result.output


def test_verbs_find_the_repository_from_a_subdirectory(tmp_path: Path) -> None:
    """Like git: run from models/iris/ of a repository, a verb works on the repository's root."""

    from support import copy_example

    repo = tmp_path / "repo"
    copy_example(repo)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "example"]):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    inside = repo / "models" / "iris"

    def gitops_ml(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gitops_ml", *args], cwd=inside, capture_output=True, text=True, check=False
        )

    validate = gitops_ml("validate")
    assert validate.returncode == 0 and "ok: 9 file(s) valid" in validate.stdout, validate.stderr
    check = gitops_ml("render", "--check")
    assert check.returncode == 0 and "deploy/ is up to date" in check.stdout, check.stderr
    models = gitops_ml("models", "--format", "json")
    assert models.returncode == 0, models.stderr
    assert {m["name"] for m in json.loads(models.stdout)["models"]} == {"iris", "digits"}
    # a directory of no repository still says what is missing, where
    (tmp_path / "elsewhere").mkdir()
    lost = subprocess.run(
        [sys.executable, "-m", "gitops_ml", "validate"],
        cwd=tmp_path / "elsewhere",
        capture_output=True,
        text=True,
        check=False,
    )
    assert lost.returncode != 0 and "gitops-ml.yaml" in lost.stderr


def test_top_level_help_imports_no_verb_and_lists_exit_codes() -> None:
    """`gitops-ml --help` must answer at once: it lists the verbs without importing them."""
    code = (
        "import sys\n"
        "from gitops_ml.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.startswith('gitops_ml.') and m not in {'gitops_ml.cli', 'gitops_ml.cli.main'})\n"
        "print('IMPORTED', heavy, [m for m in ('numpy', 'git', 'jsonschema', 'yaml', 'httpx') if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "IMPORTED [] []" in result.stdout, result.stdout
    for line in (
        "Exit codes: 0 success",
        "2 usage",
        "3 configuration",
        "70 internal error",
        "_GITOPS_ML_COMPLETE=bash_source gitops-ml",
    ):
        assert line in " ".join(result.stdout.split()), result.stdout
    for verb in COMMANDS:
        assert f"  {verb}" in result.stdout


def test_every_verb_on_a_repository_takes_dash_c(tmp_path: Path) -> None:
    import shutil

    from support import EXAMPLE

    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo)
    for verb in (
        "validate",
        "render",
        "diff",
        "build",
        "run-image",
        "models",
        "history",
        "show",
        "compare",
        "tag",
        "bump",
        "promote",
        "rollback",
    ):
        helped = CliRunner().invoke(cli, [verb, "--help"])
        assert "-C, --repo DIR" in helped.output, verb
    result = CliRunner().invoke(cli, ["validate", "-C", str(repo)])
    assert result.exit_code == 0, result.output
    twice = CliRunner().invoke(cli, ["validate", str(repo), "-C", str(tmp_path)])
    assert twice.exit_code == 2 and "the repository is given twice" in twice.output


def test_outside_a_repository_is_a_configuration_error(tmp_path: Path) -> None:
    for args in (["validate"], ["render"], ["validate", "--format", "json"], ["render", "--format", "json"]):
        result = CliRunner().invoke(cli, [*args, "-C", str(tmp_path)])
        assert result.exit_code == 3, (args, result.output)
        if "json" in args:
            doc = json.loads(result.stdout)
            assert doc["ok"] is False and doc["exitCode"] == 3 and doc["error"]["path"] == "gitops-ml.yaml"
            assert "repository file is missing" in doc["error"]["message"]
        else:
            assert "error: gitops-ml.yaml: repository file is missing" in result.stderr
            assert "gitops-ml init" in result.stderr


def test_json_mode_reports_usage_errors_as_json() -> None:
    from gitops_ml.cli.main import main

    result = subprocess.run(
        [sys.executable, "-m", "gitops_ml", "render", "--format", "json", "--no-such-option"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    doc = json.loads(result.stdout)
    assert doc["ok"] is False and doc["exitCode"] == 2 and "no-such-option" in doc["error"]["message"]
    assert callable(main)

"""`gitops-ml init`: a new repository validates clean, carries editor schemas and a pre-commit hook,
and refuses to write over an existing one."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from gitops_ml.cli.main import cli


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    return result.exit_code, result.output


def test_init_creates_a_repository_that_validates(tmp_path: Path) -> None:
    target = tmp_path / "My Models"
    code, output = _invoke("init", str(target), "--engine", "flux", "--registry", "ghcr.io/acme/models")
    assert code == 0, output
    repo = yaml.safe_load((target / "gitops-ml.yaml").read_text())
    assert repo["name"] == "my-models"
    assert repo["engine"] == "flux"
    assert repo["image"]["registry"] == "ghcr.io/acme/models"
    assert set(repo["environments"]) == {"staging", "prod"}
    assert yaml.safe_load((target / "deployments/prod/iris.yaml").read_text())["model"] == "iris@1.0.0"
    assert (target / ".gitignore").is_file()
    hooks = yaml.safe_load((target / ".pre-commit-config.yaml").read_text())
    assert [h["entry"] for h in hooks["repos"][0]["hooks"]] == [
        "gitops-ml validate",
        "gitops-ml render --check --incremental",
    ]
    for kind in ("repository", "model", "manifest", "deployment"):
        schema = json.loads((target / f".gitops-ml/schemas/{kind}.schema.json").read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert (
        (target / "models/iris/model.yaml")
        .read_text()
        .startswith("# yaml-language-server: $schema=../../.gitops-ml/schemas/model.schema.json")
    )
    code, output = _invoke("validate", str(target))
    assert code == 0, output


def test_init_pre_commit_config_runs_this_projects_hooks_without_gitops_ml_on_path(tmp_path: Path) -> None:
    import shutil
    import subprocess
    import sys

    from gitops_ml import __version__

    _invoke("init", str(tmp_path / "r"))
    config = tmp_path / "r" / ".pre-commit-config.yaml"
    hooks = yaml.safe_load(config.read_text())["repos"][0]["hooks"]
    ours = yaml.safe_load((Path(__file__).resolve().parents[1] / ".pre-commit-hooks.yaml").read_text())
    keys = ("id", "name", "entry", "pass_filenames", "files")
    assert [{k: h[k] for k in keys} for h in hooks] == [{k: h[k] for k in keys} for h in ours]
    for hook in hooks:
        # pre-commit installs exactly the gitops-ml the workflows pin into an environment of its own
        assert hook["language"] == "python" and hook["additional_dependencies"] == [f"gitops-ml=={__version__}"]
    pre_commit = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    assert pre_commit, "pre-commit is not installed: pip install -e '.[dev]'"
    proc = subprocess.run([pre_commit, "validate-config", str(config)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_init_artifact_scores_like_its_metrics_say(tmp_path: Path) -> None:
    import importlib.util

    _invoke("init", str(tmp_path / "r"))
    spec = importlib.util.spec_from_file_location("score_init", tmp_path / "r/models/iris/score.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.init()
    sample = json.loads((tmp_path / "r/models/iris/sample.json").read_text())
    result = module.run(sample["data"])
    assert result["labels"] == ["setosa", "versicolor"]


def test_init_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "existing").mkdir()
    (tmp_path / "existing/keep.txt").write_text("mine")
    code, output = _invoke("init", str(tmp_path / "existing"))
    assert code == 2
    assert "exists and is not empty" in output
    assert sorted(p.name for p in (tmp_path / "existing").iterdir()) == ["keep.txt"]


def test_init_into_an_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    code, output = _invoke("init", str(tmp_path / "empty"), "--name", "ml")
    assert code == 0, output
    assert yaml.safe_load((tmp_path / "empty/gitops-ml.yaml").read_text())["name"] == "ml"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".empty.")]


def test_schema_export_writes_the_four_schemas(tmp_path: Path) -> None:
    code, output = _invoke("schema", "export", str(tmp_path / "s"))
    assert code == 0, output
    names = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert names == ["deployment.schema.json", "manifest.schema.json", "model.schema.json", "repository.schema.json"]


def test_every_schema_property_has_a_description() -> None:
    from gitops_ml.repo import catalog
    from gitops_ml.types import Kind

    missing = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            for name, sub in (node.get("properties") or {}).items():
                if isinstance(sub, dict) and "description" not in sub and "$ref" not in sub:
                    missing.append(f"{path}.{name}")
                walk(sub, f"{path}.{name}")
            for key in ("items", "additionalProperties"):
                if isinstance(node.get(key), dict):
                    walk(node[key], f"{path}[{key}]")
            for name, sub in (node.get("$defs") or {}).items():
                walk(sub, f"{path}#{name}")

    for kind in Kind:
        walk(catalog.schema(kind), kind.value)
    assert missing == []


def test_example_carries_the_current_editor_schemas() -> None:
    from support import EXAMPLE, ROOT

    for path in (ROOT / "schemas").glob("*.schema.json"):
        exported = EXAMPLE / ".gitops-ml/schemas" / path.name
        assert exported.read_bytes() == path.read_bytes(), f"run `gitops-ml schema export {exported.parent}`"


def test_init_where_nothing_can_be_written_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, output = _invoke("init", str(blocker / "repo"))
    assert code == 3
    assert output.startswith(f"error: cannot create {blocker / 'repo'}: ")
    assert "Traceback" not in output


def test_init_names_permissions_and_next_steps(tmp_path: Path) -> None:
    import os
    import stat
    import subprocess

    outer = tmp_path / "mono"
    outer.mkdir()
    subprocess.run(["git", "init", "-q", str(outer)], check=True)
    target = outer / "ml models" / "répo"
    old = os.umask(0o022)
    try:
        result = CliRunner().invoke(cli, ["init", str(target)])
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o755, "the umask decides, as for any new directory"
    assert yaml.safe_load((target / "gitops-ml.yaml").read_text())["name"] == "repo"
    # the path is quoted for a shell, and no nested `git init` inside an existing work tree
    assert f"cd '{target}' && git add -A . && git commit" in result.output
    assert "git init" not in result.output

    (tmp_path / "afile").write_text("")
    refused = CliRunner().invoke(cli, ["init", str(tmp_path / "afile")])
    assert refused.exit_code == 2 and "exists and is not a directory" in refused.output
    named = CliRunner().invoke(cli, ["init", str(tmp_path / "r"), "--name", "Bad_Name"])
    assert (
        named.exit_code == 2
        and "pass --name" not in named.output
        and "'Bad_Name' is not a DNS-1123 label" in named.output
    )


def test_schema_generate_writes_the_bytes_init_wrote(tmp_path: Path) -> None:
    """Regenerating the schema of an untouched model changes nothing: no version bump, no re-render."""
    target = tmp_path / "repo"
    assert _invoke("init", str(target))[0] == 0
    before = (target / "models/iris/schema.json").read_bytes()
    code, output = _invoke(
        "schema",
        "generate",
        "--sample",
        str(target / "models/iris/sample.json"),
        "-o",
        str(target / "models/iris/schema.json"),
    )
    assert code == 0, output
    assert (target / "models/iris/schema.json").read_bytes() == before

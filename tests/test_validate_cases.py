"""The validation corpus: every negative case gives exit 1 (or its own code), its located messages,
and no traceback; the positive cases and the example repository validate clean."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from support import EXAMPLE

from gitops_ml.cli.main import cli

CASES = Path(__file__).parent / "cases"
NEGATIVE = sorted(p.name for p in (CASES / "negative").iterdir())


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _make_repo(tmp_path: Path, case: Path, spec: dict) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(CASES / "base", repo)
    if spec.get("base"):
        _git(repo, "init", "-q")
        _git(repo, "add", "-A")
        _git(repo, "commit", "-qm", "base")
    files = case / "files"
    if files.is_dir():
        for src in files.rglob("*"):
            if src.is_file():
                dst = repo / src.relative_to(files)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
    for rel in spec.get("delete", []):
        (repo / rel).unlink()
    return repo


def run_validate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["validate", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.mark.parametrize("name", NEGATIVE)
def test_negative_case(name: str, tmp_path: Path) -> None:
    case = CASES / "negative" / name
    spec = yaml.safe_load((case / "case.yaml").read_text())
    repo = _make_repo(tmp_path, case, spec)
    code, output = run_validate(str(repo), *spec.get("args", []))
    assert code == spec["exit"], output
    for expected in spec["expect"]:
        assert any(expected in line for line in output.splitlines()), f"{expected!r} not in:\n{output}"


def test_negative_corpus_is_large_enough() -> None:
    assert len(NEGATIVE) >= 25


def test_example_repository_is_valid() -> None:
    code, output = run_validate(str(EXAMPLE))
    assert code == 0, output
    assert "ok:" in output


def test_every_finding_is_reported_not_only_the_first(tmp_path: Path) -> None:
    repo = _make_repo(tmp_path, CASES / "negative" / "wrong-type", {})
    (repo / "deployments/prod/iris.yaml").write_text(
        (repo / "deployments/prod/iris.yaml").read_text().replace("maxReplicas: 120", "maxReplicas: 5000")
    )
    m = repo / "models/iris/model.yaml"
    m.write_text(m.read_text().replace("version: 1.0.0", "version: one"))
    code, output = run_validate(str(repo))
    assert code == 1
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 3, output


def test_ten_megabyte_file_is_refused_quickly(tmp_path: Path) -> None:
    repo = _make_repo(tmp_path, CASES / "negative" / "wrong-type", {})
    big = repo / "deployments/staging/iris.yaml"
    big.write_text(
        "apiVersion: gitops-ml.dev/v1\nkind: Deployment\nmodel: iris\nenv:\n"
        + "".join(f"  K{i}: '{'x' * 90}'\n" for i in range(110_000))
    )
    assert big.stat().st_size > 10_000_000
    code, output = run_validate(str(repo))
    assert code == 1
    assert "deployments/staging/iris.yaml:1:1: file is 10.8 MiB; gitops-ml files may be at most 2 MiB" in output
    assert "MiB" in output


def test_json_format_is_one_document(tmp_path: Path) -> None:
    import json

    repo = _make_repo(tmp_path, CASES / "negative" / "unknown-field-did-you-mean", {})
    shutil.copyfile(
        CASES / "negative/unknown-field-did-you-mean/files/deployments/staging/iris.yaml",
        repo / "deployments/staging/iris.yaml",
    )
    code, output = run_validate(str(repo), "--format", "json")
    assert code == 1
    doc = json.loads(output)
    assert doc["ok"] is False and doc["errors"] == 1
    finding = doc["findings"][0]
    assert (finding["path"], finding["line"], finding["col"]) == ("deployments/staging/iris.yaml", 6, 1)
    assert finding["jsonPath"] == "$.autoscalling"
    assert finding["hint"] == "did you mean 'autoscaling'?"


def test_github_format_prints_workflow_commands(tmp_path: Path) -> None:
    repo = _make_repo(tmp_path, CASES / "negative" / "unknown-field-did-you-mean", {})
    shutil.copyfile(
        CASES / "negative/unknown-field-did-you-mean/files/deployments/staging/iris.yaml",
        repo / "deployments/staging/iris.yaml",
    )
    code, output = run_validate(str(repo), "--format", "github")
    assert code == 1
    assert (
        "::error file=deployments/staging/iris.yaml,line=6,col=1,title=gitops-ml::unknown field 'autoscalling'; did you mean 'autoscaling'?"
        in output
    )


def test_unknown_base_revision_is_a_registry_error(tmp_path: Path) -> None:
    repo = _make_repo(tmp_path, CASES / "negative" / "version-decrease", {"base": True})
    code, output = run_validate(str(repo), "--base", "no-such-branch")
    assert code == 4
    assert "error: unknown git revision 'no-such-branch'" in output


def test_base_accepts_a_proper_bump(tmp_path: Path) -> None:
    repo = _make_repo(tmp_path, CASES / "negative" / "changed-without-bump", {"base": True})
    m = repo / "models/iris/model.yaml"
    m.write_text(m.read_text().replace("version: 1.0.0", "version: 1.0.1"))
    code, output = run_validate(str(repo), "--base", "HEAD")
    assert code == 0, output


POSITIVE = sorted(p.name for p in (CASES / "positive").iterdir())


@pytest.mark.parametrize("name", POSITIVE)
def test_positive_case(name: str, tmp_path: Path) -> None:
    case = CASES / "positive" / name
    spec = yaml.safe_load((case / "case.yaml").read_text())
    repo = _make_repo(tmp_path, case, spec)
    code, output = run_validate(str(repo))
    assert code == 0, output
    assert output.startswith("ok: ")


@pytest.mark.parametrize("prefix", [b"\xef\xbb\xbf", b"# -*- coding: latin-1 -*-\n# \xe9t\xe9\n"], ids=["bom", "latin-1"])
def test_score_py_is_read_as_python_reads_it(tmp_path: Path, prefix: bytes) -> None:
    repo = _make_repo(tmp_path, CASES / "negative" / "wrong-type", {})
    (repo / "deployments/prod/iris.yaml").write_text(
        (repo / "deployments/prod/iris.yaml").read_text().replace("maxReplicas: 120", "maxReplicas: 12")
    )
    score = repo / "models/iris/score.py"
    score.write_bytes(prefix + score.read_bytes())
    code, output = run_validate(str(repo))
    assert "score.py" not in output, output

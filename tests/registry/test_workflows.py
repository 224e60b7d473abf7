"""Generated GitHub Actions workflows pass actionlint and the GitHub workflow JSON Schema, pin
actions to commit SHAs, grant least privilege per job, and this project's reusable copies are current."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gitops_ml.scaffold.workflows import render_workflows

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CASES = {
    "argocd-private-registry": dict(engine="argocd", registry="registry.example.com/ml"),
    "flux-ghcr": dict(engine="flux", registry="ghcr.io/acme/models", training_command='python training/train.py --model "$MODEL"'),
    "reusable": dict(engine="argocd", registry="ghcr.io/acme/models", reusable=True),
}


def tool(name: str) -> str:
    found = shutil.which(name, path=f"{BIN}:{shutil.os.environ.get('PATH', '')}")
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return found


@pytest.fixture(params=sorted(CASES))
def written(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[dict[str, str], list[Path]]:
    files = render_workflows(**CASES[request.param])
    paths = []
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        paths.append(path)
    return files, paths


def test_actionlint_passes(written: tuple[dict[str, str], list[Path]]) -> None:
    _, paths = written
    proc = subprocess.run([tool("actionlint"), "-no-color", *map(str, paths)], capture_output=True, text=True, cwd=paths[0].parents[2])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_github_workflow_schema_passes(written: tuple[dict[str, str], list[Path]]) -> None:
    _, paths = written
    proc = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, paths)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actions_are_pinned_to_full_shas_with_the_version_in_a_comment(written: tuple[dict[str, str], list[Path]]) -> None:
    files, _ = written
    uses = [line for text in files.values() for line in text.splitlines() if "uses:" in line]
    assert uses
    for line in uses:
        assert re.search(r"uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


def test_permissions_are_empty_at_the_top_and_granted_per_job(written: tuple[dict[str, str], list[Path]]) -> None:
    files, _ = written
    allowed = {"contents": {"read", "write"}, "pull-requests": {"write"}, "packages": {"write"}, "id-token": {"write"}}
    for rel, text in files.items():
        doc = yaml.safe_load(text)
        assert doc["permissions"] == {}, rel
        for name, job in doc["jobs"].items():
            assert job["permissions"], f"{rel}: job {name} has no explicit permissions"
            for scope, level in job["permissions"].items():
                assert level in allowed[scope], f"{rel}: {name} asks {scope}: {level}"
        writes = {name for name, job in doc["jobs"].items() if "write" in job["permissions"].values()}
        expected = {"gitops-ml-pr.yml": {"rendered-diff", "build"} if "packages" in text else {"rendered-diff"},
                    "gitops-ml-main.yml": {"publish", "sign"}, "gitops-ml-retrain.yml": {"retrain"}}[Path(rel).name]
        assert writes == expected, rel
        oidc = {name for name, job in doc["jobs"].items() if "id-token" in job["permissions"]}
        assert oidc == ({"sign"} if Path(rel).name == "gitops-ml-main.yml" else set()), f"{rel}: the OIDC token is for the signing job alone"


def test_the_publish_workflow_signs_what_it_pushed_keylessly(written: tuple[dict[str, str], list[Path]]) -> None:
    files, _ = written
    doc = yaml.safe_load(files[".github/workflows/gitops-ml-main.yml"])
    sign = doc["jobs"]["sign"]
    assert sign["needs"] == "publish" and sign["permissions"]["id-token"] == "write"
    assert any("cosign-installer@" in str(step.get("uses", "")) for step in sign["steps"])
    (run,) = [step for step in sign["steps"] if "cosign sign" in str(step.get("run", ""))]
    assert run["env"]["REFS"] == "${{ needs.publish.outputs.refs }}", "outputs reach the shell as data, never as code"
    build = next(step for step in doc["jobs"]["publish"]["steps"] if step.get("id") == "build")
    assert "gitops-ml build --push --format json" in build["run"] and 'r["ref"] for i in images for r in i["referrers"]' in build["run"]


def test_workflows_run_the_documented_commands() -> None:
    files = render_workflows(engine="argocd", registry="ghcr.io/acme/models", training_command="make train")
    pr, main, retrain = (files[f".github/workflows/gitops-ml-{n}.yml"] for n in ("pr", "main", "retrain"))
    assert 'gitops-ml validate --base "origin/$BASE_REF" --format github' in pr
    assert "gitops-ml render --check" in pr and "gitops-ml pr-comment" in pr and "fetch-depth: 0" in pr
    assert "gitops-ml build --push" in main and "gitops-ml tag" in main
    assert "make train" in retrain and "workflow_dispatch" in retrain and "schedule" in retrain
    assert '--branch "gitops-ml/retrain-$MODEL" --push --pr' in retrain
    on = yaml.safe_load(render_workflows(engine="flux", registry="r.example.com/x", reusable=True)[".github/workflows/gitops-ml-pr.yml"])[True]
    assert list(on) == ["workflow_call"]


def test_bad_parameters_are_refused() -> None:
    from gitops_ml.errors import UsageError

    with pytest.raises(UsageError, match="unknown GitOps engine"):
        render_workflows(engine="spinnaker", registry="r.example.com")
    with pytest.raises(UsageError, match="one line"):
        render_workflows(engine="flux", registry="r.example.com", training_command="a\nb")


def test_this_projects_reusable_workflows_are_current() -> None:
    for rel, text in render_workflows(engine="argocd", registry="ghcr.io/acme/models", reusable=True).items():
        path = ROOT / rel
        assert path.is_file() and path.read_text() == text, f"{rel} is stale: run `python -m gitops_ml.scaffold.workflows`"

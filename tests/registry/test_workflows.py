"""Generated GitHub Actions workflows pass actionlint, zizmor (auditor persona) and the GitHub workflow
JSON Schema, pin current major versions of actions to commit SHAs, grant least privilege per job, never
leave a write token where user code can read it, keep secrets in environments, and this project's
reusable copies are current."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_ml.scaffold.workflows import render_workflows

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CASES = {
    "argocd-private-registry": dict(engine="argocd", registry="registry.example.com/ml"),
    "flux-ghcr": dict(
        engine="flux", registry="ghcr.io/acme/models", training_command='python training/train.py --model "$MODEL"'
    ),
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
    proc = subprocess.run(
        [tool("actionlint"), "-no-color", *map(str, paths)], capture_output=True, text=True, cwd=paths[0].parents[2]
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_auditor_finds_nothing(written: tuple[dict[str, str], list[Path]]) -> None:
    _, paths = written
    proc = subprocess.run(
        [tool("zizmor"), "--offline", "--persona", "auditor", "--format", "json", "--no-progress", *map(str, paths)],
        capture_output=True,
        text=True,
    )
    findings = json.loads(proc.stdout or "[]")
    assert proc.returncode == 0 and findings == [], [
        (f["ident"], f["desc"], f["locations"][0]["symbolic"]["annotation"]) for f in findings
    ] or proc.stderr


def test_github_workflow_schema_passes(written: tuple[dict[str, str], list[Path]]) -> None:
    _, paths = written
    proc = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actions_are_pinned_to_full_shas_with_the_version_in_a_comment(
    written: tuple[dict[str, str], list[Path]],
) -> None:
    files, _ = written
    uses = [line for text in files.values() for line in text.splitlines() if "uses:" in line]
    assert uses
    for line in uses:
        assert re.search(r"uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


def test_permissions_are_empty_at_the_top_and_granted_per_job(written: tuple[dict[str, str], list[Path]]) -> None:
    files, _ = written
    allowed = {
        "contents": {"read", "write"},
        "pull-requests": {"write"},
        "packages": {"write"},
        "id-token": {"write"},
        "issues": {"read", "write"},
        "actions": {"write"},
    }
    for rel, text in files.items():
        doc = yaml.safe_load(text)
        assert doc["permissions"] == {}, rel
        for name, job in doc["jobs"].items():
            assert job["permissions"], f"{rel}: job {name} has no explicit permissions"
            for scope, level in job["permissions"].items():
                assert level in allowed[scope], f"{rel}: {name} asks {scope}: {level}"
        writes = {name for name, job in doc["jobs"].items() if "write" in job["permissions"].values()}
        expected = {
            "gitops-ml-pr.yml": {"rendered-diff", "build-push"} if "packages" in text else {"rendered-diff"},
            "gitops-ml-main.yml": {"publish", "sign"},
            "gitops-ml-retrain.yml": {"retrain"},
            "gitops-ml-monitor.yml": {"monitor"},
        }[Path(rel).name]
        assert writes == expected, rel
        oidc = {name for name, job in doc["jobs"].items() if "id-token" in job["permissions"]}
        assert oidc == ({"sign"} if Path(rel).name == "gitops-ml-main.yml" else set()), (
            f"{rel}: the OIDC token is for the signing job alone"
        )


def test_the_publish_workflow_signs_what_it_pushed_keylessly(written: tuple[dict[str, str], list[Path]]) -> None:
    files, _ = written
    doc = yaml.safe_load(files[".github/workflows/gitops-ml-main.yml"])
    sign = doc["jobs"]["sign"]
    assert sign["needs"] == "publish" and sign["permissions"]["id-token"] == "write"
    assert any("cosign-installer@" in str(step.get("uses", "")) for step in sign["steps"])
    (run,) = [step for step in sign["steps"] if "cosign sign" in str(step.get("run", ""))]
    assert run["env"]["REFS"] == "${{ needs.publish.outputs.refs }}", "outputs reach the shell as data, never as code"
    build = next(step for step in doc["jobs"]["publish"]["steps"] if step.get("id") == "build")
    assert (
        "gitops-ml build --push --format json" in build["run"]
        and 'r["ref"] for i in images for r in i["referrers"]' in build["run"]
    )


# the oldest major of each action that runs on Node 24 (Node 20 actions are deprecated on GitHub's runners)
CURRENT_MAJORS = {
    "actions/checkout": 7,
    "actions/setup-python": 7,
    "actions/upload-artifact": 7,
    "docker/login-action": 4,
    "sigstore/cosign-installer": 4,
}


def test_actions_are_current_major_versions(written: tuple[dict[str, str], list[Path]]) -> None:
    files, _ = written
    for match in re.finditer(r"uses: ([\w.-]+/[\w.-]+)@[0-9a-f]{40} # v(\d+)\.", "\n".join(files.values())):
        assert int(match.group(2)) >= CURRENT_MAJORS[match.group(1)], match.group(0)


def _jobs(text: str) -> dict[str, Any]:
    return yaml.safe_load(text)["jobs"]  # type: ignore[no-any-return]


def test_no_checkout_keeps_the_token_and_only_pushing_steps_get_it(written: tuple[dict[str, str], list[Path]]) -> None:
    files, _ = written
    for rel, text in files.items():
        for name, job in _jobs(text).items():
            steps = job["steps"]
            checkouts = [s for s in steps if str(s.get("uses", "")).startswith("actions/checkout@")]
            # every job checks out the repository but the one that only signs what was pushed
            assert checkouts or name == "sign", (rel, name)
            assert all(s["with"]["persist-credentials"] is False for s in checkouts), (rel, name)
            for step in steps:
                run = str(step.get("run", ""))
                pushes = "--push" in run and "build" not in run  # git pushes: tags, the retraining branch
                assert ("GIT_CONFIG_VALUE_0" in run) == pushes, (rel, name, step.get("name"))
                if pushes:  # the step that pushes runs last: no user code after it holds the token
                    assert step is steps[-1], (rel, name)


def test_packages_write_only_in_jobs_that_push_images(written: tuple[dict[str, str], list[Path]]) -> None:
    files, _ = written
    for rel, text in files.items():
        for name, job in _jobs(text).items():
            # image pushes, or signatures pushed next to the images
            pushes_images = any(
                "gitops-ml build --push" in str(s.get("run", "")) or "cosign sign" in str(s.get("run", ""))
                for s in job["steps"]
            )
            if job["permissions"].get("packages") == "write":
                assert pushes_images, (rel, name)
            if not pushes_images:
                assert not any("login-action" in str(s.get("uses", "")) for s in job["steps"]), (rel, name)


def test_jobs_that_read_secrets_run_in_an_environment(written: tuple[dict[str, str], list[Path]]) -> None:
    files, _ = written
    for rel, text in files.items():
        for name, job in _jobs(text).items():
            if "secrets." in yaml.safe_dump(job["steps"]):
                assert job.get("environment") in {"gitops-ml-registry", "gitops-ml-retrain", "gitops-ml-monitor"}, (
                    rel,
                    name,
                )


def test_the_push_step_hands_git_the_token_for_that_step_only(tmp_path: Path) -> None:
    text = render_workflows(engine="argocd", registry="ghcr.io/acme/models")[".github/workflows/gitops-ml-main.yml"]
    step = _jobs(text)["publish"]["steps"][-1]
    script = str(step["run"]).replace(
        "gitops-ml tag --push", "git config --get-urlmatch http.extraheader https://github.com/acme/models"
    )
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    env = {**os.environ, "GITHUB_TOKEN": "t0ken", "GITHUB_SERVER_URL": "https://github.com"}
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    mask, header = proc.stdout.splitlines()
    assert header == "AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46dDBrZW4="  # base64 of x-access-token:t0ken
    assert mask == "::add-mask::eC1hY2Nlc3MtdG9rZW46dDBrZW4="
    assert (
        "t0ken" not in (tmp_path / ".git" / "config").read_text()
        and "extraheader" not in (tmp_path / ".git" / "config").read_text()
    )


def test_workflows_run_the_documented_commands() -> None:
    files = render_workflows(engine="argocd", registry="ghcr.io/acme/models", training_command="make train")
    pr, main, retrain = (files[f".github/workflows/gitops-ml-{n}.yml"] for n in ("pr", "main", "retrain"))
    assert 'gitops-ml validate --base "origin/$BASE_REF" --format github' in pr
    assert "gitops-ml render --check" in pr and "gitops-ml pr-comment" in pr and "fetch-depth: 0" in pr
    assert "gitops-ml build --push" in main and "gitops-ml tag" in main
    assert "make train" in retrain and "workflow_dispatch" in retrain and "schedule" in retrain
    assert '--branch "gitops-ml/retrain-$MODEL" --push --pr' in retrain


def test_a_crossed_threshold_reaches_the_retraining_pull_request() -> None:
    """monitor files issues and dispatches retrain with them as evidence; retrain scores the sample
    in a step without a token and hands the diff and the evidence to bump, which alone holds it."""
    files = render_workflows(engine="argocd", registry="ghcr.io/acme/models")
    monitor = yaml.safe_load(files[".github/workflows/gitops-ml-monitor.yml"])
    retrain = yaml.safe_load(files[".github/workflows/gitops-ml-retrain.yml"])
    assert "schedule" in monitor[True] and "workflow_dispatch" in monitor[True]
    job = monitor["jobs"]["monitor"]
    assert job["permissions"] == {"contents": "read", "issues": "write", "actions": "write"}
    step = job["steps"][-1]
    assert (
        step["run"]
        == 'gitops-ml alert --since "$SINCE" --issues --dispatch gitops-ml-retrain.yml --ref "$GITHUB_REF_NAME"'
    )
    assert 'pip install "gitops-ml[monitor,s3]==' in files[".github/workflows/gitops-ml-monitor.yml"]
    # what alert dispatches with is what retrain accepts
    assert set(retrain[True]["workflow_dispatch"]["inputs"]) == {"model", "evidence"}
    steps = retrain["jobs"]["retrain"]["steps"]
    (scoring,) = [s for s in steps if "gitops-ml predictions" in str(s.get("run", ""))]
    assert "GITHUB_TOKEN" not in scoring.get("env", {}), "the models' code never shares a step with the token"
    assert steps.index(scoring) < len(steps) - 1
    bump = steps[-1]
    assert bump["env"]["EVIDENCE"] == "${{ inputs.evidence }}", "inputs reach the shell as data, never as code"
    for flag in (
        '--evidence "$EVIDENCE"',
        '--predictions "$OUTPUT_DIR/predictions.md"',
        '--reference "$OUTPUT_DIR/reference.json"',
    ):
        assert flag in bump["run"], flag
    assert retrain["jobs"]["retrain"]["permissions"]["issues"] == "read"
    on = yaml.safe_load(
        render_workflows(engine="flux", registry="r.example.com/x", reusable=True)[".github/workflows/gitops-ml-pr.yml"]
    )[True]
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
        assert path.is_file() and path.read_text() == text, (
            f"{rel} is stale: run `python -m gitops_ml.scaffold.workflows`"
        )

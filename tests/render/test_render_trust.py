"""What `render --check` (the CI gate) and `render` trust: nothing in the committed ownership index
by default; `--incremental` reuses units whose recorded input key matches (for pre-commit hooks)."""

from __future__ import annotations

import hashlib
import re
from typing import Callable

import yaml
from render.render_helpers import Repo, run
from support import ROOT

INDEX = "deploy/.gitops-ml-render.json"


def rendered_and_committed(example_repo: Callable[[], Repo]) -> Repo:
    repo = example_repo()
    assert run("render", repo.path).exit_code == 0
    repo.commit("initial")
    return repo


def test_check_and_render_see_a_hand_edit_hidden_by_an_edited_index(example_repo: Callable[[], Repo]) -> None:
    repo = rendered_and_committed(example_repo)
    rel = "apps/prod/iris/kustomization.yaml"
    target = repo.path / "deploy" / rel
    original = target.read_bytes()
    hacked = re.sub(rb"newTag: .*", b"newTag: hacked", original)
    assert hacked != original
    target.write_bytes(hacked)
    index = repo.path / INDEX
    text = index.read_text()
    old_hash, new_hash = hashlib.sha256(original).hexdigest(), hashlib.sha256(hacked).hexdigest()
    assert text.count(f'"{rel}": "{old_hash}"') == 1
    index.write_text(text.replace(f'"{rel}": "{old_hash}"', f'"{rel}": "{new_hash}"'))

    check = run("render", repo.path, "--check")
    assert check.exit_code == 1
    assert f"error: deploy/{rel}: differs from what `gitops-ml render` writes" in check.stderr
    assert target.read_bytes() == hacked  # --check writes nothing
    # the fast path trusts the committed index, as its help says: a pre-commit hook, not a CI gate
    assert run("render", repo.path, "--check", "--incremental").exit_code == 0

    result = run("render", repo.path)
    assert result.exit_code == 0, result.stderr
    assert f"wrote deploy/{rel}" in result.stdout
    assert target.read_bytes() == original
    assert run("render", repo.path, "--check").exit_code == 0
    assert repo.git("status", "--porcelain") == ""  # back to exactly what was committed


def test_incremental_render_repairs_a_hand_edit_the_index_does_not_hide(example_repo: Callable[[], Repo]) -> None:
    repo = rendered_and_committed(example_repo)
    target = repo.path / "deploy/apps/staging/digits/pdb.yaml"
    original = target.read_bytes()
    assert b"maxUnavailable: 1" in original
    target.write_bytes(original.replace(b"maxUnavailable: 1", b"maxUnavailable: 0"))
    check = run("render", repo.path, "--check", "--incremental")
    assert check.exit_code == 1 and "deploy/apps/staging/digits/pdb.yaml: differs" in check.stderr
    assert run("render", repo.path, "--incremental").exit_code == 0
    assert target.read_bytes() == original


def test_a_comment_in_a_deployment_file_is_not_staleness(example_repo: Callable[[], Repo]) -> None:
    repo = rendered_and_committed(example_repo)
    deployment = repo.path / "deployments/staging/iris.yaml"
    deployment.write_text(deployment.read_text() + "# note\n")
    for args in (("--check",), ("--check", "--incremental")):
        result = run("render", repo.path, *args)
        assert result.exit_code == 0, (args, result.stderr)
        assert "ok: deploy/ is up to date" in result.stdout
    assert repo.git("status", "--porcelain", "deploy") == ""
    # a render may refresh the recorded input keys; the manifests stay byte-identical
    result = run("render", repo.path)
    assert result.exit_code == 0, result.stderr
    assert repo.git("status", "--porcelain", "deploy") in ("", f" M {INDEX}\n")
    assert run("render", repo.path, "--check", "--incremental").exit_code == 0


def test_an_index_whose_file_list_was_edited_is_stale(example_repo: Callable[[], Repo]) -> None:
    repo = rendered_and_committed(example_repo)
    index = repo.path / INDEX
    text = index.read_text()
    line = next(x for x in text.splitlines(keepends=True) if '"apps/prod/iris/pdb.yaml": "' in x)
    index.write_text(text.replace(line, line.replace("pdb.yaml", "pdb-renamed.yaml")))
    result = run("render", repo.path, "--check")
    assert result.exit_code == 1
    assert f"error: {INDEX}: differs from what `gitops-ml render` writes" in result.stderr


def test_the_pre_commit_hook_takes_the_fast_path_and_ci_the_full_gate() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [h for h in hooks if h["id"] == "gitops-ml-render-check"]
    assert hook["entry"] == "gitops-ml render --check --incremental"
    workflow = (ROOT / "templates/workflows/gitops-ml-pr.yml.j2").read_text()
    assert "run: gitops-ml render --check\n" in workflow and "--incremental" not in workflow
    help_text = run("render", "--help").stdout
    assert "--incremental" in help_text and "trusts" in help_text

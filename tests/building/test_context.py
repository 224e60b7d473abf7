"""The build context and the checks before a build, without a Docker engine."""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gitops_ml.build.dockerfile import render_dockerfile
from gitops_ml.build.layers import CONTEXT_MTIME, SBOM_PATH
from gitops_ml.build.plan import BuildOptions, plan_images
from gitops_ml.cli.main import cli
from gitops_ml.registry.versions import resolve_model_version
from gitops_ml.repo.handle import Repository
from gitops_ml.repo.loading import load_tree
from gitops_ml.repo.sources import WorkTree
from gitops_ml.serving.settings import MODEL_DIR, READINESS_PATH
from gitops_ml.types import ModelName
from gitops_ml.validate.rules import validate_tree


def _specs(repo: Path):  # type: ignore[no-untyped-def]
    report = validate_tree(load_tree(WorkTree(repo)))
    assert report.specs is not None, report.findings
    return report.specs


def test_image_reference_is_the_rendered_one(example_repo: Path) -> None:
    specs = _specs(example_repo)
    plans = plan_images(Repository(example_repo), specs, BuildOptions())
    assert [p.model for p in plans] == ["digits", "iris"]
    for plan in plans:
        expected = resolve_model_version(Repository(example_repo), specs, plan.model, None).image_ref(specs.repository)
        assert plan.ref == expected
        assert plan.ref.startswith("registry.example.com/ml/")


def test_overrides_change_the_reference(example_repo: Path) -> None:
    specs = _specs(example_repo)
    default = plan_images(Repository(example_repo), specs, BuildOptions(models=(ModelName("iris"),)))[0]
    other = plan_images(
        Repository(example_repo),
        specs,
        BuildOptions(models=(ModelName("iris"),), registry="127.0.0.1:5000/x", base_image="gitops-ml-base:bookworm"),
    )[0]
    assert other.ref.startswith("127.0.0.1:5000/x/iris:1.0.0-")
    assert other.ref.rsplit("-", 1)[1] != default.ref.rsplit("-", 1)[1]
    assert other.base_image == "gitops-ml-base:bookworm"


def test_dockerfile_adds_the_layers_in_order_and_settings_last(example_repo: Path) -> None:
    plan = plan_images(Repository(example_repo), _specs(example_repo), BuildOptions(models=(ModelName("iris"),)))[0]
    text = render_dockerfile(plan)
    adds = re.findall(r"^ADD (.*)$", text, re.M)
    assert adds == [f"layers/{name}.tar /" for name in ("dependencies", "runtime", "code", "artifact")]
    assert "pip install" not in text and "wheels" not in text, "the context carries installed layers, no installer runs"
    # nothing that changes per version may come before the artifact layer
    assert text.index("LABEL") > text.index("ADD layers/artifact.tar")
    assert text.index("GITOPS_ML_MODEL_VERSION") > text.index("ADD layers/artifact.tar")
    assert "USER 10001:10001" in text
    assert READINESS_PATH in text and "HEALTHCHECK" in text
    entry = re.search(r"^ENTRYPOINT (.*)$", text, re.M)
    assert entry and json.loads(entry.group(1)) == ["/opt/gitops-ml/venv/bin/python", "-m", "gitops_ml.serving"]
    check = re.search(r"^    CMD (.*)$", text, re.M)
    assert check and json.loads(check.group(1))[0] == "/opt/gitops-ml/venv/bin/python"
    for label in (
        "org.opencontainers.image.source",
        "org.opencontainers.image.version",
        "dev.gitops-ml.model",
        "dev.gitops-ml.artifact.sha256",
    ):
        assert label in text


def _members(tar_path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(tar_path) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_context_only_writes_the_layer_tars(example_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "contexts"
    result = CliRunner().invoke(
        cli, ["build", str(example_repo), "--model", "iris", "--context-only", str(out), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    image = json.loads(result.stdout)["images"][0]
    assert image["status"] == "context" and image["ref"].startswith("registry.example.com/ml/iris:1.0.0-")
    ctx = out / "iris"
    files = {str(p.relative_to(ctx)) for p in ctx.rglob("*") if p.is_file()}
    assert files == {
        "Dockerfile",
        ".dockerignore",
        "layers/dependencies.tar",
        "layers/runtime.tar",
        "layers/code.tar",
        "layers/artifact.tar",
    }
    code, artifact = _members(ctx / "layers" / "code.tar"), _members(ctx / "layers" / "artifact.tar")
    model = MODEL_DIR.strip("/")
    assert {f"{model}/score.py", f"{model}/sample.json", f"{model}/requirements.lock"} <= set(code)
    assert f"{model}/model.joblib" not in code and f"{model}/model.yaml" not in code
    assert {f"{model}/model.yaml", f"{model}/model.joblib", SBOM_PATH.strip("/")} <= set(artifact)
    deps = _members(ctx / "layers" / "dependencies.tar")
    site = "opt/gitops-ml/venv/lib/python3.11/site-packages"
    assert f"{site}/sklearn/__init__.py" in deps, "the model's locked requirements are installed"
    assert f"{site}/uvicorn/__init__.py" in deps, "so are the server's"
    assert "opt/gitops-ml/runtime/gitops_ml/serving/__init__.py" in _members(ctx / "layers" / "runtime.tar")
    for members in (code, artifact, deps):
        assert {(m.mtime, m.uid, m.gid, m.uname) for m in members.values()} == {(CONTEXT_MTIME, 0, 0, "")}
    script = deps["opt/gitops-ml/venv/bin/uvicorn"]
    with tarfile.open(ctx / "layers" / "dependencies.tar") as tar:
        handle = tar.extractfile(script)
        assert handle is not None and handle.readline() == b"#!/opt/gitops-ml/venv/bin/python\n", (
            "scripts run the image's interpreter"
        )
    assert "org.opencontainers.image.revision" in (ctx / "Dockerfile").read_text()
    assert [p.name for p in out.iterdir()] == ["iris"], "no temporary directories left"


def test_layers_are_byte_identical_when_written_again_from_clean_caches(
    example_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reproducibility of image digests rests on this: same commit, fresh caches, same layer bytes."""
    digests = []
    for run in ("a", "b"):
        monkeypatch.setenv("GITOPS_ML_CACHE_DIR", str(tmp_path / f"cache-{run}"))
        out = tmp_path / f"ctx-{run}"
        result = CliRunner().invoke(cli, ["build", str(example_repo), "--model", "iris", "--context-only", str(out)])
        assert result.exit_code == 0, result.output
        digests.append(
            {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((out / "iris" / "layers").iterdir())}
        )
    assert digests[0] == digests[1] and len(digests[0]) == 4


def test_syntax_error_in_score_py_is_located_before_any_build(example_repo: Path, tmp_path: Path) -> None:
    score = example_repo / "models" / "iris" / "score.py"
    score.write_text(score.read_text() + "\ndef broken(:\n    pass\n")
    line = score.read_text().splitlines().index("def broken(:") + 1
    out = tmp_path / "contexts"
    result = CliRunner().invoke(cli, ["build", str(example_repo), "--context-only", str(out)])
    assert result.exit_code == 1
    assert f"models/iris/score.py:{line}:" in result.stderr and "syntax error" in result.stderr
    assert not out.exists() or list(out.iterdir()) == []


def _build_with_conda(example_repo: Path, context: Path, conda: str) -> Result:
    """iris with a conda file instead of requirements.txt, built as a context."""
    model = example_repo / "models" / "iris"
    (model / "requirements.txt").unlink()
    (model / "conda.yaml").write_text(conda)
    manifest = model / "manifest.yaml"
    manifest.write_text(
        manifest.read_text()
        .replace("requirements: requirements.txt", "conda: conda.yaml")
        .replace("  lock: requirements.lock\n", "")
    )
    (model / "requirements.lock").unlink()
    return CliRunner().invoke(cli, ["build", str(example_repo), "--model", "iris", "--context-only", str(context)])


def test_conda_only_package_is_refused(example_repo: Path, tmp_path: Path) -> None:
    result = _build_with_conda(
        example_repo,
        tmp_path / "c",
        "name: iris\ndependencies:\n  - python=3.11\n  - cudatoolkit=11.8\n  - pip:\n    - joblib\n",
    )
    assert result.exit_code == 1, result.output
    assert "models/iris/conda.yaml:4:" in result.stderr and "cudatoolkit" in result.stderr


def test_conda_pip_entries_follow_the_requirements_rules(example_repo: Path, tmp_path: Path) -> None:
    conda = "name: iris\ndependencies:\n  - python=3.11\n  - pip:\n    - joblib\n    - -e git+https://example.com/x/y#egg=y\n    - this is not valid!!\n"
    result = _build_with_conda(example_repo, tmp_path / "c", conda)
    assert result.exit_code == 1, result.output
    assert "models/iris/conda.yaml:6:7: editable requirement" in result.stderr
    assert "models/iris/conda.yaml:7:7: invalid requirement 'this is not valid!!'" in result.stderr
    assert not (tmp_path / "c").exists()


def test_nonexistent_requirement_of_an_unlocked_model_is_located(
    example_repo: Path, tmp_path: Path, empty_index: str
) -> None:
    model = example_repo / "models" / "iris"
    manifest = model / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("  lock: requirements.lock\n", ""))
    (model / "requirements.lock").unlink()
    req = model / "requirements.txt"
    req.write_text("gitops-ml-no-such-package==9.9.9\n" + req.read_text())
    result = CliRunner().invoke(
        cli, ["build", str(example_repo), "--model", "iris", "--context-only", str(tmp_path / "c")]
    )
    assert result.exit_code == 5, result.output
    assert "models/iris/requirements.txt:1:1:" in result.stderr and "gitops-ml-no-such-package" in result.stderr
    assert empty_index in result.stderr, "the index that was asked is named"
    assert "warning: no lock committed" in result.stderr
    assert not (tmp_path / "c" / "iris").exists()


def test_unreachable_docker_engine_gives_a_hint(
    example_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    result = CliRunner().invoke(cli, ["build", str(example_repo), "--model", "iris"])
    assert result.exit_code == 5, result.output
    assert "cannot reach the Docker engine" in result.stderr and "hint: start a Docker engine" in result.stderr

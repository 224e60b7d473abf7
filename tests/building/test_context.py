"""The build context and the checks before a build, without a Docker engine."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from gitops_ml.build.dockerfile import render_dockerfile
from gitops_ml.build.plan import BuildOptions, plan_images
from gitops_ml.build.wheelhouse import CONTEXT_MTIME
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
    other = plan_images(Repository(example_repo), specs, BuildOptions(models=(ModelName("iris"),), registry="127.0.0.1:5000/x", base_image="gitops-ml-base:bookworm"))[0]
    assert other.ref.startswith("127.0.0.1:5000/x/iris:1.0.0-")
    assert other.ref.rsplit("-", 1)[1] != default.ref.rsplit("-", 1)[1]
    assert other.base_image == "gitops-ml-base:bookworm"


def test_dockerfile_orders_layers_and_keeps_wheels_out(example_repo: Path) -> None:
    plan = plan_images(Repository(example_repo), _specs(example_repo), BuildOptions(models=(ModelName("iris"),)))[0]
    text = render_dockerfile(plan)
    final = text[text.rindex("\nFROM "):]
    copies = re.findall(r"^COPY (.*)$", final, re.M)
    assert copies == [
        "--from=venv /opt/gitops-ml/venv /opt/gitops-ml/venv",
        "--from=runtime /opt/gitops-ml/runtime /opt/gitops-ml/runtime",
        f"model/code/ {MODEL_DIR}/",
        f"model/artifact/ {MODEL_DIR}/",
    ]
    assert "wheels" not in final
    # nothing that changes per version may come before the artifact layer
    assert final.index("LABEL") > final.index("COPY model/artifact/")
    assert final.index("GITOPS_ML_MODEL_VERSION") > final.index("COPY model/artifact/")
    assert "USER 10001:10001" in final
    assert READINESS_PATH in final and "HEALTHCHECK" in final
    entry = re.search(r"^ENTRYPOINT (.*)$", final, re.M)
    assert entry and json.loads(entry.group(1))[-2:] == ["-m", "gitops_ml.serving"]
    for label in ("org.opencontainers.image.source", "org.opencontainers.image.revision", "org.opencontainers.image.version",
                  "dev.gitops-ml.model", "dev.gitops-ml.artifact.sha256"):
        assert label in final or label == "org.opencontainers.image.revision"  # no revision without a commit argument


def test_context_only_writes_the_layer_layout(example_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "contexts"
    result = CliRunner().invoke(cli, ["build", str(example_repo), "--model", "iris", "--context-only", str(out), "--format", "json"])
    assert result.exit_code == 0, result.output
    image = json.loads(result.stdout)["images"][0]
    assert image["status"] == "context" and image["ref"].startswith("registry.example.com/ml/iris:1.0.0-")
    ctx = out / "iris"
    files = {str(p.relative_to(ctx)) for p in ctx.rglob("*") if p.is_file()}
    assert {"Dockerfile", "model/code/score.py", "model/code/sample.json", "model/artifact/model.yaml", "model/artifact/model.joblib"} <= files
    assert "model/code/model.joblib" not in files and "model/code/model.yaml" not in files
    wheels = {f for f in files if f.startswith("wheels/")}
    assert any(re.fullmatch(r"wheels/runtime/gitops_ml-.*\.whl", f) for f in wheels)
    assert any("scikit_learn" in f for f in wheels), "model requirements must be in the wheelhouse"
    assert any("uvicorn" in f for f in wheels), "the server's requirements must be in the wheelhouse"
    assert all(os.stat(ctx / f).st_mtime == CONTEXT_MTIME for f in files)
    assert "org.opencontainers.image.revision" in (ctx / "Dockerfile").read_text()
    assert [p.name for p in out.iterdir()] == ["iris"], "no temporary directories left"


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
    manifest.write_text(manifest.read_text().replace("requirements: requirements.txt", "conda: conda.yaml"))
    return CliRunner().invoke(cli, ["build", str(example_repo), "--model", "iris", "--context-only", str(context)])


def test_conda_only_package_is_refused(example_repo: Path, tmp_path: Path) -> None:
    result = _build_with_conda(example_repo, tmp_path / "c", "name: iris\ndependencies:\n  - python=3.11\n  - cudatoolkit=11.8\n  - pip:\n    - joblib\n")
    assert result.exit_code == 1, result.output
    assert "models/iris/conda.yaml:4:" in result.stderr and "cudatoolkit" in result.stderr


def test_conda_pip_entries_follow_the_requirements_rules(example_repo: Path, tmp_path: Path) -> None:
    conda = "name: iris\ndependencies:\n  - python=3.11\n  - pip:\n    - joblib\n    - -e git+https://example.com/x/y#egg=y\n    - this is not valid!!\n"
    result = _build_with_conda(example_repo, tmp_path / "c", conda)
    assert result.exit_code == 1, result.output
    assert "models/iris/conda.yaml:6:7: editable requirement" in result.stderr
    assert "models/iris/conda.yaml:7:7: invalid requirement 'this is not valid!!'" in result.stderr
    assert not (tmp_path / "c").exists()


def test_nonexistent_requirement_is_located(example_repo: Path, tmp_path: Path, empty_index: str) -> None:
    req = example_repo / "models" / "iris" / "requirements.txt"
    req.write_text("gitops-ml-no-such-package==9.9.9\n" + req.read_text())
    result = CliRunner().invoke(cli, ["build", str(example_repo), "--model", "iris", "--context-only", str(tmp_path / "c")])
    assert result.exit_code == 5, result.output
    assert "models/iris/requirements.txt:1:1:" in result.stderr and "gitops-ml-no-such-package" in result.stderr
    assert not (tmp_path / "c" / "iris").exists()
    assert not list((tmp_path / "cache" / "wheelhouses").glob("*")) if (tmp_path / "cache" / "wheelhouses").exists() else True


def test_unreachable_docker_engine_gives_a_hint(example_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    result = CliRunner().invoke(cli, ["build", str(example_repo), "--model", "iris"])
    assert result.exit_code == 5, result.output
    assert "cannot reach the Docker engine" in result.stderr and "hint: start a Docker engine" in result.stderr

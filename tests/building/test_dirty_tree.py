"""A model whose files differ from HEAD: `build --push` refuses it, a local build warns and labels `<sha>-dirty`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from gitops_ml.adapters.docker import DockerEngine
from gitops_ml.build import dirty, service
from gitops_ml.build.plan import BuildOptions, ImagePlan, ImageResult, Progress, plan_images
from gitops_ml.cli.main import cli
from gitops_ml.repo.handle import Repository
from gitops_ml.types import ModelName


def _head(repo: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The refusal must come before the Docker engine is asked anything."""

    def connect() -> object:
        raise AssertionError("the Docker engine was contacted")

    monkeypatch.setattr(DockerEngine, "connect", staticmethod(connect))


def test_push_of_an_edited_model_is_refused_naming_the_files(example_repo: Path, no_engine: None) -> None:
    score = example_repo / "models" / "iris" / "score.py"
    score.write_text(score.read_text() + "# dirty\n")
    (example_repo / "models" / "iris" / "notes.txt").write_text("untracked\n")
    result = CliRunner().invoke(cli, ["build", str(example_repo), "--model", "iris", "--push"])
    assert result.exit_code == 4, result.output
    assert "models/iris/score.py" in result.stderr and "models/iris/notes.txt" in result.stderr
    assert "differ from HEAD" in result.stderr
    assert "hint:" in result.stderr and "commit" in result.stderr and "--allow-dirty" in result.stderr


def test_a_dirty_file_of_another_model_does_not_stop_this_push(example_repo: Path, no_engine: None) -> None:
    score = example_repo / "models" / "digits" / "score.py"
    score.write_text(score.read_text() + "# dirty\n")
    plans = plan_images(Repository(example_repo), _specs(example_repo), BuildOptions(models=(ModelName("iris"),)))
    assert dirty.mark_dirty(Repository(example_repo), plans)[0].dirty == ()


def test_local_context_of_a_dirty_model_warns_and_labels_the_revision_dirty(example_repo: Path, tmp_path: Path) -> None:
    score = example_repo / "models" / "iris" / "score.py"
    score.write_text(score.read_text() + "# dirty\n")
    out = tmp_path / "c"
    result = CliRunner().invoke(
        cli, ["build", str(example_repo), "--model", "iris", "--context-only", str(out), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "models/iris/score.py" in result.stderr
    assert json.loads(result.stdout)["images"][0]["dirty"] == ["models/iris/score.py"]
    dockerfile = (out / "iris" / "Dockerfile").read_text()
    assert f'"{_head(example_repo)}-dirty"' in dockerfile


def test_a_clean_model_is_labelled_with_head_and_no_warning(example_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "c"
    result = CliRunner().invoke(cli, ["build", str(example_repo), "--model", "iris", "--context-only", str(out)])
    assert result.exit_code == 0, result.output
    assert "warning:" not in result.stderr
    dockerfile = (out / "iris" / "Dockerfile").read_text()
    assert _head(example_repo) in dockerfile and "-dirty" not in dockerfile


def test_allow_dirty_lets_the_push_through_with_a_warning(example_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    score = example_repo / "models" / "iris" / "score.py"
    score.write_text(score.read_text() + "# dirty\n")
    seen: list[ImagePlan] = []

    def build_image(engine: object, plan: ImagePlan, options: BuildOptions, progress: Progress) -> ImageResult:
        seen.append(plan)
        return ImageResult(plan.model, str(plan.version.version), plan.ref, "built", pushed=True)

    class Engine:
        def close(self) -> None:
            pass

    monkeypatch.setattr(DockerEngine, "connect", staticmethod(lambda: Engine()))
    monkeypatch.setattr(service, "build_image", build_image)
    result = CliRunner().invoke(cli, ["build", str(example_repo), "--model", "iris", "--push", "--allow-dirty"])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "models/iris/score.py" in result.stderr
    assert seen[0].labels["org.opencontainers.image.revision"] == f"{_head(example_repo)}-dirty"


def _specs(repo: Path):  # type: ignore[no-untyped-def]
    from gitops_ml.repo.loading import load_tree  # noqa: PLC0415
    from gitops_ml.repo.sources import WorkTree  # noqa: PLC0415
    from gitops_ml.validate.rules import validate_tree  # noqa: PLC0415

    report = validate_tree(load_tree(WorkTree(repo)))
    assert report.specs is not None
    return report.specs


def test_a_context_refuses_untracked_files_such_as_a_dot_env(example_repo: Path, tmp_path: Path) -> None:
    (example_repo / "models" / "iris" / ".env").write_text("AWS_SECRET_ACCESS_KEY=x\n")
    (example_repo / "models" / "iris" / "keys").mkdir()
    (example_repo / "models" / "iris" / "keys" / "primary").write_text("k\n")
    out = tmp_path / "c"
    result = CliRunner().invoke(cli, ["build", str(example_repo), "--model", "iris", "--context-only", str(out)])
    assert result.exit_code == 4, result.output
    assert (
        "model iris: models/iris/.env, models/iris/keys/primary are neither tracked by git nor named by the manifest"
        in result.stderr
    )
    assert ".gitignore" in result.stderr and "--allow-dirty" in result.stderr
    assert not out.exists()
    allowed = CliRunner().invoke(
        cli, ["build", str(example_repo), "--model", "iris", "--context-only", str(out), "--allow-dirty"]
    )
    assert allowed.exit_code == 0, allowed.output
    assert "warning:" in allowed.stderr

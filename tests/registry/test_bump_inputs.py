"""bump's command-line inputs: one version part, an --artifact that stays in the model directory,
finite metrics; each refusal is a usage error (exit 2) and writes nothing."""

from __future__ import annotations

import json
from typing import Callable

import pytest
from click.testing import Result

from tests.registry.conftest import GitRepo
from tests.registry.edit_support import IRIS, repo, state  # noqa: F401


@pytest.mark.parametrize(("first", "second"), [("--major", "--patch"), ("--major", "--minor"), ("--minor", "--patch")])
def test_two_version_parts_are_a_usage_error(
    repo: GitRepo, invoke: Callable[..., Result], first: str, second: str
) -> None:
    before = state(repo)
    result = invoke("bump", "iris", first, second)
    assert result.exit_code == 2
    assert f"{first} and {second} cannot be used together" in result.stderr
    assert state(repo) == before


# --- (19) bad --artifact values are usage errors; a failed validation says so -------------------


@pytest.mark.parametrize(
    ("artifact", "message"),
    [
        ("../../gitops-ml.yaml", "--artifact '../../gitops-ml.yaml' escapes the model directory models/iris/"),
        ("../digits/model.joblib", "--artifact '../digits/model.joblib' escapes the model directory models/iris/"),
        ("/etc/passwd", "--artifact '/etc/passwd' must be a path relative to the model directory models/iris/"),
        ("ftp://x/y", "--artifact 'ftp://x/y': ftp:// is not supported"),
        ("s3://Bad_Bucket/key", "--artifact 's3://Bad_Bucket/key' is not a valid artifact URI"),
    ],
)
def test_bad_artifact_values_are_usage_errors(
    repo: GitRepo, invoke: Callable[..., Result], artifact: str, message: str
) -> None:
    before = state(repo)
    for extra in ((), ("--sha256", "a" * 64)):
        result = invoke("bump", "iris", "--artifact", artifact, *extra)
        assert result.exit_code == 2, result.output
        assert f"error: {message}" in result.stderr
        assert state(repo) == before


def test_a_validation_failure_after_the_edit_says_validation_not_render(
    repo: GitRepo, invoke: Callable[..., Result]
) -> None:
    schema = json.loads(repo.read("models/iris/schema.json"))
    schema["required"] = sorted(set(schema.get("required", [])) | {"extra"})
    schema.setdefault("properties", {})["extra"] = {"type": "string"}
    repo.write("models/iris/schema.json", json.dumps(schema, indent=2))
    iris = repo.read(IRIS)
    result = invoke("bump", "iris")
    assert result.exit_code == 1
    assert "sample does not match models/iris/schema.json" in result.stderr
    assert (
        "hint: the edit was undone: the repository does not validate with it; fix the errors above (`gitops-ml validate`) and run it again"
        in result.stderr
    )
    assert "render error" not in result.stderr
    assert repo.read(IRIS) == iris


# --- non-finite metrics --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('{"accuracy": NaN}', "nan"),
        ('{"accuracy": Infinity}', "inf"),
        ('{"accuracy": 1e400}', "inf"),
        ('{"loss": -Infinity}', "-inf"),
        ("accuracy: .nan\n", "nan"),
    ],
)
def test_bump_refuses_non_finite_metrics(repo: GitRepo, invoke: Callable[..., Result], text: str, shown: str) -> None:
    metrics = repo.path.parent / ("m.yaml" if text.startswith("accuracy:") else "m.json")
    metrics.write_text(text)
    key = "loss" if "loss" in text else "accuracy"
    before = state(repo)
    result = invoke("bump", "iris", "--metrics", metrics)
    assert result.exit_code == 2, result.output
    # bare NaN/Infinity tokens are not JSON: refused where they stand; 1e400 and YAML's .nan parse, then are refused
    token = text.split(": ", 1)[1].rstrip("}\n")
    if token in ("NaN", "Infinity", "-Infinity"):
        assert f"error: metrics file {metrics}:1:" in result.stderr and f"{token} is not JSON" in result.stderr
    else:
        assert f"error: metrics file {metrics}: {key} must be a finite number, got {shown}" in result.stderr
    assert "report this as a bug" not in result.stderr
    assert state(repo) == before


def test_an_edit_of_a_file_holding_nan_is_not_mistaken_for_a_bug() -> None:
    from gitops_ml.repo.editing import SetValue, edit_text

    assert (
        edit_text("version: 1.0.0\nmetrics:\n  f1: .nan\n", [SetValue(("version",), "1.0.1")])
        == "version: 1.0.1\nmetrics:\n  f1: .nan\n"
    )

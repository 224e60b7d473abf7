"""`--format json` of the registry verbs is strict JSON: a non-finite metric or delta is null, never
NaN or Infinity (which JSON does not have)."""

from __future__ import annotations

import json
from typing import Any, Callable

from click.testing import Result

from tests.registry.conftest import GitRepo
from tests.registry.edit_support import IRIS, repo  # noqa: F401


def _strict(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_registry_json_is_strict_when_model_yaml_holds_non_finite_metrics(
    repo: GitRepo, invoke: Callable[..., Result]
) -> None:
    repo.replace(IRIS, "  accuracy: 0.9778\n", "  accuracy: 0.9778\n  loss: .inf\n  f1: .nan\n")
    repo.replace(IRIS, "version: 1.0.0", "version: 1.0.1")
    repo.commit("hand-written metrics")
    history = invoke("history", "iris", "--format", "json")
    assert history.exit_code == 0, history.output
    newest = _strict(history.stdout)["versions"][0]
    assert newest["metrics"] == {"accuracy": 0.9778, "loss": None, "f1": None}
    assert "loss inf" in invoke("history", "iris").stdout
    # show and compare read the version's files, which validation may refuse (metrics must be
    # finite); either way their output is JSON or an error, never NaN or Infinity
    for args in (("show", "iris@1.0.1"), ("compare", "iris@1.0.0", "iris@1.0.1")):
        result = invoke(*args, "--format", "json")
        if result.exit_code == 0:
            data = _strict(result.stdout)
            metrics = data["metrics"] if args[0] == "show" else {m["name"]: m["new"] for m in data["metrics"]}
            assert metrics == {"accuracy": 0.9778, "loss": None, "f1": None}
        else:  # under --format json the error is JSON on stdout too
            error = _strict(result.stdout)
            assert (result.exit_code, error["exitCode"], error["ok"]) == (4, 4, False), result.output
            assert "do not validate" in error["error"]["message"]


def test_a_metric_delta_that_overflows_is_null_in_json(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    repo.replace(IRIS, "version: 1.0.0", "version: 1.0.1")
    repo.replace(IRIS, "  accuracy: 0.9778\n", "  accuracy: 0.9778\n  score: -1.7e+308\n")
    repo.commit("a very negative score")
    repo.replace(IRIS, "version: 1.0.1", "version: 1.0.2")
    repo.replace(IRIS, "  score: -1.7e+308\n", "  score: 1.7e+308\n")
    repo.commit("a very positive score")
    result = invoke("compare", "iris@1.0.1", "iris@1.0.2", "--format", "json")
    assert result.exit_code == 0, result.output
    score = next(m for m in _strict(result.stdout)["metrics"] if m["name"] == "score")
    assert score == {"name": "score", "old": -1.7e308, "new": 1.7e308, "delta": None}
    text = invoke("compare", "iris@1.0.1", "iris@1.0.2").stdout
    assert "  score  -1.7e+308 -> 1.7e+308\n" in text


def test_every_non_finite_float_becomes_null() -> None:
    from gitops_ml.cli._registry import strict

    data = {"a": [float("nan"), 1.5, {"b": float("inf"), "c": -float("inf")}], "d": (2, "x"), "e": None}
    assert strict(data) == {"a": [None, 1.5, {"b": None, "c": None}], "d": [2, "x"], "e": None}

"""The retraining pull request carries its evidence: the monitor report of the issue that started it
(`bump --evidence`, read from GitHub) and the predictions diff on the committed sample (`gitops-ml
predictions`, then `bump --predictions FILE`, as the retraining workflow runs them): the committed
version and the new one each score the sample in their own environment, changed rows come first,
with the agreement rate."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from click.testing import Result

from tests.registry.conftest import GitRepo
from tests.registry.edit_support import BRANCH, OPEN_QUERY, PULLS, gh_env, repo  # noqa: F401
from tests.registry.github_server import REPO, GitHubServer, github, pull  # noqa: F401

# the new score.py answers class 2 where the committed one answers 1: the sample's second row changes
REMAP = '\n\n_run = run\n\n\ndef run(data):\n    answer = _run(data)\n    return {"predictions": [2 if p == 1 else p for p in answer["predictions"]]}\n'
ISSUE_BODY = (
    "<!-- gitops-ml:monitor iris/prod -->\n<!-- gitops-ml:retrained-for 1.0.0 -->\n\n"
    "### gitops-ml monitor: iris 1.0.0 in prod — threshold crossed\n\n"
    "threshold crossed: 2 feature(s) drifted: petal_length (PSI 5.04), petal_width (PSI 4.61)\n\n"
    "---\nUpdated by `gitops-ml alert` at 2026-12-02 10:00 UTC; every scheduled run that finds a threshold crossed updates this issue.\n"
)


def _table(body: str) -> list[str]:
    section = body[body.index("#### Predictions on the committed sample") : body.index("#### Rendered manifests")]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| row")]


@pytest.mark.slow
def test_the_retraining_pull_request_shows_the_evidence_and_the_predictions_diff(
    repo: GitRepo,
    invoke: Callable[..., Result],
    gh_env: GitHubServer,  # noqa: F811
) -> None:
    repo.write("models/iris/score.py", repo.read("models/iris/score.py") + REMAP)
    bodies: list[str] = []

    def check(sent: dict[str, Any]) -> None:
        bodies.append(sent["body"])

    predictions = invoke("predictions", "iris", "--format", "markdown", "--env-manager", "venv")
    assert predictions.exit_code == 0, predictions.output
    section = repo.path.parent / "predictions.md"
    section.write_text(predictions.stdout)
    gh_env.expect(
        "GET",
        f"/repos/{REPO}/issues/12",
        200,
        {
            "number": 12,
            "title": "gitops-ml monitor: iris in prod crossed a threshold",
            "body": ISSUE_BODY,
            "html_url": "u",
        },
    )
    gh_env.expect("GET", PULLS, 200, [], query=OPEN_QUERY)
    gh_env.expect("POST", PULLS, 201, pull(3, BRANCH), body_check=check)
    result = invoke("bump", "iris", "--patch", "--evidence", "12", "--predictions", section, "--pr")
    assert result.exit_code == 0, result.output
    gh_env.assert_done()
    body = bodies[0]

    # the evidence: the issue's report, without its hidden markers and bookkeeping
    assert "#### Evidence\n\nThis retraining was started by #12." in body
    assert "<summary>#12 gitops-ml monitor: iris in prod crossed a threshold</summary>" in body
    assert "petal_length (PSI 5.04)" in body
    assert (
        "gitops-ml:monitor" not in body and "retrained-for" not in body and "Updated by `gitops-ml alert`" not in body
    )

    # the predictions: both versions answered, the changed row first, then the others in order
    assert "`sample.json` scored by 1.0.0 (before) and this change (after), each in its own environment." in body
    assert "**Agreement: 2 of 3 rows (66.7 %)**; 1 changed. Compared: `predictions` of each answer." in body
    assert _table(body) == [
        "| 1 | `[6.2,2.9,4.3,1.3]` | `1` | `2` | **changed** |",
        "| 0 | `[5.1,3.5,1.4,0.2]` | `0` | `0` |  |",
        "| 2 | `[7.7,3.0,6.1,2.3]` | `2` | `2` |  |",
    ]
    assert body.index("#### Evidence") < body.index("#### Predictions") < body.index("#### Rendered manifests")
    assert "opened pull request #3" in result.stdout


def test_predictions_as_json_and_text(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    repo.write("models/iris/score.py", repo.read("models/iris/score.py") + REMAP)
    repo.write(
        "models/iris/model.yaml", repo.read("models/iris/model.yaml").replace("version: 1.0.0", "version: 1.1.0")
    )
    result = invoke("predictions", "iris", "--format", "json", "--env-manager", "local")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["old"]["version"], data["new"]["version"], data["compared"], data["changed"]) == (
        "1.0.0",
        "1.1.0",
        3,
        1,
    )
    assert [r["row"] for r in data["rows"]] == [1, 0, 2] and data["rows"][0] | {"input": None} == {
        "row": 1,
        "input": None,
        "old": 1,
        "new": 2,
        "changed": True,
    }
    text = invoke("predictions", "iris", "--env-manager", "local")
    assert "iris 1.0.0 -> 1.1.0 on sample.json: 2 of 3 agree (66.7 %), 1 changed" in text.stdout
    assert "  row 1: 1 -> 2  input [6.2,2.9,4.3,1.3]" in text.stdout


def test_a_new_version_that_cannot_score_is_shown_not_fatal(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    """In this Python (--env-manager local, a process per version): a score.py whose init() fails is
    what the pull request must show, not a failure."""
    repo.write(
        "models/iris/score.py",
        "def init():\n    raise RuntimeError('weights missing')\n\n\ndef run(data):\n    return data\n",
    )
    result = invoke("predictions", "iris", "--env-manager", "local", "--format", "json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["compared"] == 1 and summary["changed"] == 1 and summary["old"]["error"] is None
    assert "RuntimeError: weights missing" in summary["new"]["error"] and "score.py:2" in summary["new"]["error"]
    markdown = invoke("predictions", "iris", "--env-manager", "local", "--format", "markdown").stdout
    assert "> **this change could not score the sample:**" in markdown and "weights missing" in markdown
    assert "**Agreement: 0 of 1 answers (0.0 %)**; 1 changed." in markdown


def test_evidence_from_a_file_and_bad_evidence(repo: GitRepo, invoke: Callable[..., Result]) -> None:
    result = invoke("bump", "iris", "--evidence", "nowhere.md")
    assert result.exit_code == 2 and "neither issue numbers (12 or 12,14) nor an existing file" in result.stderr
    missing = invoke("bump", "iris", "--predictions", "nowhere.md")
    assert missing.exit_code == 2 and "--predictions nowhere.md does not exist" in missing.stderr
    assert "version: 1.0.0" in repo.read("models/iris/model.yaml")
    why = repo.path.parent / "why.md"
    why.write_text("<!-- hidden -->\nAccuracy on last week's labels fell to 0.81.\n")
    from gitops_ml.edits.prbody import Evidence, evidence_section

    section = evidence_section([Evidence("why.md", why.read_text())])
    assert section == (
        "#### Evidence\n\nWhy this retraining was made:\n\n<details open><summary>why.md</summary>\n\n"
        "Accuracy on last week's labels fell to 0.81.\n\n</details>\n"
    )

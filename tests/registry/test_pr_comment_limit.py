"""`pr-comment` never sends a body GitHub would refuse (over 65,536 characters: 422, and the comment
goes stale): it posts the first part, closes what it cut open, and says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from gitops_ml.adapters.github import MAX_COMMENT_CHARS, fit_comment
from gitops_ml.cli.pr_comment import command
from tests.registry.github_server import INTEGRATION_403, REPO, TOKEN, GitHubServer, comment, github, user  # noqa: F401

MARKER = "<!-- gitops-ml:rendered-diff -->"
COMMENTS = f"/repos/{REPO}/issues/7/comments"


def _big_markdown() -> str:
    sections = [
        f"<details><summary>m{i}</summary>\n\n```diff\n"
        + "".join(f"+ line {n} é→\n" for n in range(400))
        + "```\n\n</details>\n"
        for i in range(40)
    ]
    return "### changes\n\n" + "\n".join(sections)


def _check_sent(body: Any) -> None:
    text = body["body"]
    assert text.startswith(MARKER + "\n")
    assert len(text.encode("utf-8")) <= MAX_COMMENT_CHARS == 65_536
    assert text.count("```") % 2 == 0 and text.count("<details>") == text.count("</details>")
    assert "cut to fit GitHub's 65,536-character limit" in text


def test_a_body_over_githubs_limit_is_cut_with_a_note_instead_of_refused(
    github: GitHubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_API_URL": github.url,
        "GITHUB_REPOSITORY": REPO,
        "GITOPS_ML_GITHUB_BACKOFF": "0",
    }.items():
        monkeypatch.setenv(name, value)
    big = _big_markdown()
    assert len(big) > 100_000
    path = tmp_path / "d.md"
    path.write_text(big, encoding="utf-8")
    github.expect("GET", "/user", 403, INTEGRATION_403)
    github.expect("GET", COMMENTS, 200, [], query={"per_page": "100", "page": "1"})
    github.expect("POST", COMMENTS, 201, comment(3, "x", user("github-actions[bot]", "Bot")), body_check=_check_sent)
    result = CliRunner().invoke(command, ["--pr", "7", "--body-file", str(path)])
    assert result.exit_code == 0, result.output
    assert "posted comment" in result.output and "cut to fit GitHub's 65,536-character limit" in result.output
    github.assert_done()


def test_a_body_within_the_limit_is_sent_as_is() -> None:
    text = f"{MARKER}\n" + "a" * 1000
    assert fit_comment(text) == (text, False)

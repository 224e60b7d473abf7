"""`pr-comment` updates only its own comment: one whose body starts with the marker and that the
token's identity wrote (GET /user), or, for a GitHub Actions token that may not read /user, one
written by a bot. A person quoting the comment is never overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from gitops_ml.cli.pr_comment import command
from tests.registry.github_server import INTEGRATION_403, REPO, TOKEN, GitHubServer, comment, github, user  # noqa: F401

MARKER = "<!-- gitops-ml:rendered-diff -->"
COMMENTS = f"/repos/{REPO}/issues/7/comments"
PAGE1 = {"per_page": "100", "page": "1"}
ALICE = user("alice")
BOT = user("github-actions[bot]", "Bot")


@pytest.fixture
def body(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, github: GitHubServer) -> Path:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITOPS_ML_GITHUB_BACKOFF", "0")
    monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
    path = tmp_path / "d.md"
    path.write_text("new diff\n")
    return path


def run(body: Path) -> str:
    result = CliRunner().invoke(command, ["--pr", "7", "--body-file", str(body)])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_humans_quoting_comment_is_left_alone_and_a_new_comment_is_created(github: GitHubServer, body: Path) -> None:
    github.expect("GET", "/user", 403, INTEGRATION_403)
    github.expect(
        "GET",
        COMMENTS,
        200,
        [comment(1, f"> {MARKER}\nquoted by alice", ALICE), comment(2, f"{MARKER}\npasted by alice", ALICE)],
        query=PAGE1,
    )
    github.expect("POST", COMMENTS, 201, comment(3, f"{MARKER}\nnew diff", BOT), body={"body": f"{MARKER}\nnew diff"})
    assert "posted comment" in run(body)
    github.assert_done()


def test_the_bots_own_comment_is_updated_under_an_actions_token(github: GitHubServer, body: Path) -> None:
    github.expect("GET", "/user", 403, INTEGRATION_403)
    github.expect(
        "GET",
        COMMENTS,
        200,
        [
            comment(1, f"> {MARKER}\nquoted by alice", ALICE),
            comment(2, f"> {MARKER}\na bot quoting", user("other[bot]", "Bot")),
            comment(5, f"{MARKER}\nold diff", BOT),
        ],
        query=PAGE1,
    )
    github.expect(
        "PATCH",
        f"/repos/{REPO}/issues/comments/5",
        200,
        comment(5, f"{MARKER}\nnew diff", BOT),
        body={"body": f"{MARKER}\nnew diff"},
    )
    assert "updated comment" in run(body)
    github.assert_done()


def test_a_personal_tokens_own_comment_is_updated_and_nobody_elses(github: GitHubServer, body: Path) -> None:
    carol = user("carol")
    github.expect("GET", "/user", 200, carol)
    github.expect(
        "GET",
        COMMENTS,
        200,
        [
            comment(1, f"{MARKER}\nalice's", ALICE),
            comment(2, f"{MARKER}\nthe bot's", BOT),
            comment(9, f"{MARKER}\ncarol's old diff", carol),
        ],
        query=PAGE1,
    )
    github.expect(
        "PATCH",
        f"/repos/{REPO}/issues/comments/9",
        200,
        comment(9, f"{MARKER}\nnew diff", carol),
        body={"body": f"{MARKER}\nnew diff"},
    )
    assert "updated comment" in run(body)
    github.assert_done()


def test_a_bad_token_on_user_is_a_clear_error(github: GitHubServer, body: Path) -> None:
    github.expect("GET", "/user", 401, {"message": "Bad credentials"})
    result = CliRunner().invoke(command, ["--pr", "7", "--body-file", str(body)])
    assert result.exit_code != 0 and "GitHub refused the token" in result.output
    github.assert_done()

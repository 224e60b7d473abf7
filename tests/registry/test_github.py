"""The GitHub REST client against a local server that checks every request and answers like GitHub."""

from __future__ import annotations

import pytest

from gitops_ml.adapters.github import GitHubClient, GitHubSettings, repository_from_remote, settings_from_env
from gitops_ml.errors import ConfigError, GitHubError
from tests.registry.github_server import INTEGRATION_403, REPO, TOKEN, GitHubServer, comment, github, pull, user  # noqa: F401

PULLS = f"/repos/{REPO}/pulls"
OPEN_QUERY = {"head": "acme:gitops-ml/bump-iris", "state": "open", "per_page": "100"}


def client(server: GitHubServer, attempts: int = 4) -> GitHubClient:
    return GitHubClient(GitHubSettings(TOKEN, REPO, server.url, attempts=attempts, backoff=0.0))


def test_opens_a_pull_request_when_none_is_open(github: GitHubServer) -> None:
    github.expect("GET", PULLS, 200, [], query=OPEN_QUERY)
    github.expect(
        "POST",
        PULLS,
        201,
        pull(7, "gitops-ml/bump-iris"),
        body={"title": "T", "head": "gitops-ml/bump-iris", "base": "main", "body": "B", "maintainer_can_modify": True},
    )
    with client(github) as gh:
        pr, created = gh.open_or_update(head="gitops-ml/bump-iris", base="main", title="T", body="B")
    assert (pr.number, pr.url, created) == (7, f"https://github.com/{REPO}/pull/7", True)
    github.assert_done()


def test_updates_the_open_pull_request_instead_of_opening_another(github: GitHubServer) -> None:
    github.expect("GET", PULLS, 200, [pull(7, "gitops-ml/bump-iris")], query=OPEN_QUERY)
    github.expect("PATCH", f"{PULLS}/7", 200, pull(7, "gitops-ml/bump-iris"), body={"title": "T2", "body": "B2"})
    with client(github) as gh:
        pr, created = gh.open_or_update(head="gitops-ml/bump-iris", base="main", title="T2", body="B2")
    assert (pr.number, created) == (7, False)
    github.assert_done()


def test_422_already_exists_finds_and_updates_the_existing_one(github: GitHubServer) -> None:
    already = {
        "message": "Validation Failed",
        "errors": [
            {
                "resource": "PullRequest",
                "code": "custom",
                "message": "A pull request already exists for acme:gitops-ml/bump-iris.",
            }
        ],
    }
    github.expect("POST", PULLS, 422, already, body_check=lambda b: None)
    github.expect("GET", PULLS, 200, [pull(9, "gitops-ml/bump-iris")], query=OPEN_QUERY)
    github.expect("PATCH", f"{PULLS}/9", 200, pull(9, "gitops-ml/bump-iris"), body={"title": "T", "body": "B"})
    with client(github) as gh:
        pr, created = gh.create_pull_request(head="gitops-ml/bump-iris", base="main", title="T", body="B")
    assert (pr.number, created) == (9, False)
    github.assert_done()


def test_other_422_is_an_error_with_githubs_message(github: GitHubServer) -> None:
    github.expect(
        "POST",
        PULLS,
        422,
        {"message": "Validation Failed", "errors": [{"message": "No commits between main and x"}]},
        body_check=lambda b: None,
    )
    with client(github) as gh, pytest.raises(GitHubError, match="No commits between main and x"):
        gh.create_pull_request(head="x", base="main", title="T", body="B")
    github.assert_done()


def test_401_bad_credentials_is_a_clear_error(github: GitHubServer) -> None:
    github.expect(
        "GET",
        PULLS,
        401,
        {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
        query=OPEN_QUERY,
    )
    with client(github) as gh, pytest.raises(GitHubError) as info:
        gh.find_pull_request("gitops-ml/bump-iris")
    assert "refused the token (401 Bad credentials)" in str(info.value)
    assert "GITHUB_TOKEN" in info.value.hint
    assert info.value.exit_code == 5
    github.assert_done()


def test_403_names_the_missing_permission(github: GitHubServer) -> None:
    github.expect("GET", PULLS, 403, {"message": "Resource not accessible by integration"}, query=OPEN_QUERY)
    with client(github) as gh, pytest.raises(GitHubError, match="Resource not accessible") as info:
        gh.find_pull_request("gitops-ml/bump-iris")
    assert "pull-requests: write" in info.value.hint


def test_5xx_is_retried_with_backoff_then_succeeds(github: GitHubServer) -> None:
    waits: list[float] = []
    github.expect("GET", PULLS, 502, {"message": "Server Error"}, query=OPEN_QUERY)
    github.expect("GET", PULLS, 503, None, query=OPEN_QUERY)
    github.expect("GET", PULLS, 200, [], query=OPEN_QUERY)
    settings = GitHubSettings(TOKEN, REPO, github.url, attempts=4, backoff=0.5)
    with GitHubClient(settings, sleep=waits.append) as gh:
        assert gh.find_pull_request("gitops-ml/bump-iris") is None
    assert waits == [0.5, 1.0]  # exponential
    github.assert_done()


def test_5xx_until_attempts_run_out_fails(github: GitHubServer) -> None:
    for _ in range(3):
        github.expect("GET", PULLS, 503, {"message": "Service Unavailable"}, query=OPEN_QUERY)
    with client(github, attempts=3) as gh, pytest.raises(GitHubError, match="failed 3 times .* 503"):
        gh.find_pull_request("gitops-ml/bump-iris")
    github.assert_done()


def test_unreachable_api_is_a_clear_error() -> None:
    settings = GitHubSettings(TOKEN, REPO, "http://127.0.0.1:9", attempts=2, backoff=0.0)
    with GitHubClient(settings) as gh, pytest.raises(GitHubError, match="cannot reach GitHub"):
        gh.find_pull_request("x")


def test_one_comment_is_created_then_updated(github: GitHubServer) -> None:
    marker = "<!-- gitops-ml:render-diff -->"
    comments = f"/repos/{REPO}/issues/5/comments"
    bot = user("github-actions[bot]", "Bot")
    github.expect("GET", "/user", 403, INTEGRATION_403)  # asked once per client
    github.expect("GET", comments, 200, [comment(1, "LGTM", user("alice"))], query={"per_page": "100", "page": "1"})
    github.expect("POST", comments, 201, {"id": 11, "html_url": "u"}, body={"body": f"{marker}\ndiff one"})
    github.expect(
        "GET",
        comments,
        200,
        [comment(1, "LGTM", user("alice")), comment(11, f"{marker}\ndiff one", bot)],
        query={"per_page": "100", "page": "1"},
    )
    github.expect(
        "PATCH",
        f"/repos/{REPO}/issues/comments/11",
        200,
        {"id": 11, "html_url": "u"},
        body={"body": f"{marker}\ndiff two"},
    )
    with client(github) as gh:
        first, created = gh.upsert_comment(5, marker, "diff one")
        second, created_again = gh.upsert_comment(5, marker, "diff two")
    assert (first.id, created, second.id, created_again) == (11, True, 11, False)
    github.assert_done()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/models.git", "acme/models"),
        ("https://x-access-token:abc@github.com/acme/models", "acme/models"),
        ("git@github.com:acme/models.git", "acme/models"),
        ("ssh://git@github.com/acme/models.git", "acme/models"),
        ("/tmp/origin.git", None),
        (None, None),
    ],
)
def test_repository_from_origin_url(url: str | None, expected: str | None) -> None:
    assert repository_from_remote(url) == expected


def test_settings_need_a_token_and_a_repository() -> None:
    with pytest.raises(ConfigError, match="GITHUB_TOKEN is not set"):
        settings_from_env({}, "git@github.com:acme/models.git")
    with pytest.raises(ConfigError, match="which GitHub repository"):
        settings_from_env({"GITHUB_TOKEN": "t"}, "/tmp/origin.git")
    s = settings_from_env(
        {"GITHUB_TOKEN": "t", "GITHUB_API_URL": "https://ghe.example.com/api/v3/"}, "git@github.com:acme/models.git"
    )
    assert (s.repository, s.api_url) == ("acme/models", "https://ghe.example.com/api/v3")
    assert settings_from_env({"GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "o/r"}, None).repository == "o/r"


def test_pr_comment_command_posts_then_updates_one_comment(
    github: GitHubServer, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from gitops_ml.cli.pr_comment import command

    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    event = tmp_path / "event.json"
    event.write_text('{"pull_request": {"number": 4}}')
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    body = tmp_path / "diff.md"
    body.write_text("```diff\n-a\n+b\n```\n")
    marker = "<!-- gitops-ml:rendered-diff -->"
    comments = f"/repos/{REPO}/issues/4/comments"
    github.expect("GET", "/user", 403, INTEGRATION_403)
    github.expect("GET", comments, 200, [], query={"per_page": "100", "page": "1"})
    github.expect(
        "POST",
        comments,
        201,
        {"id": 3, "html_url": "https://github.com/acme/models/pull/4#issuecomment-3"},
        body={"body": f"{marker}\n```diff\n-a\n+b\n```"},
    )
    result = CliRunner().invoke(command, ["--body-file", str(body)])
    assert result.exit_code == 0, result.output
    assert "posted comment https://github.com/acme/models/pull/4#issuecomment-3 on #4" in result.output
    github.assert_done()
    monkeypatch.delenv("GITHUB_TOKEN")
    refused = CliRunner().invoke(command, ["--body-file", str(body)])
    assert refused.exit_code == 3 and "GITHUB_TOKEN is not set" in refused.output


def test_a_dispatch_is_a_204_and_a_missing_workflow_says_what_to_check(github: GitHubServer) -> None:
    dispatches = f"/repos/{REPO}/actions/workflows/gitops-ml-retrain.yml/dispatches"
    body = {"ref": "main", "inputs": {"model": "iris", "evidence": "12"}}
    github.expect("POST", dispatches, 204, None, body=body)
    github.expect("POST", dispatches, 404, {"message": "Not Found"}, body=body)
    github.expect("POST", dispatches, 422, {"message": "Workflow does not have 'workflow_dispatch' trigger"}, body=body)
    with client(github) as gh:
        gh.dispatch_workflow("gitops-ml-retrain.yml", ref="main", inputs={"model": "iris", "evidence": "12"})
        with pytest.raises(GitHubError) as missing:
            gh.dispatch_workflow("gitops-ml-retrain.yml", ref="main", inputs={"model": "iris", "evidence": "12"})
        assert "is there a .github/workflows/gitops-ml-retrain.yml on main?" in missing.value.hint
        with pytest.raises(GitHubError, match="does not have 'workflow_dispatch' trigger"):
            gh.dispatch_workflow("gitops-ml-retrain.yml", ref="main", inputs={"model": "iris", "evidence": "12"})
    github.assert_done()


def test_the_issue_of_an_endpoint_is_found_on_a_later_page_and_only_if_the_token_wrote_it(github: GitHubServer) -> None:
    marker = "<!-- gitops-ml:monitor iris/prod -->"
    issues = f"/repos/{REPO}/issues"
    alice, bot = user("alice"), user("gitops-bot")

    def issue(number: int, body: str, author: dict[str, object]) -> dict[str, object]:
        return {"number": number, "title": "t", "body": body, "user": author, "html_url": f"u{number}"}

    github.expect("GET", "/user", 200, bot)
    page1 = [issue(n, "other", alice) for n in range(100)]
    github.expect("GET", issues, 200, page1, query={"labels": "L", "state": "open", "per_page": "100", "page": "1"})
    page2 = [issue(200, marker, alice), issue(201, marker + "\nreport", bot)]
    github.expect("GET", issues, 200, page2, query={"labels": "L", "state": "open", "per_page": "100", "page": "2"})
    with client(github) as gh:
        found = gh.find_issue("L", marker)
    assert found is not None and (found.number, found.body) == (201, marker + "\nreport")
    github.assert_done()

"""The shared fixtures build what they promise: fixed dates, a bare origin, an isolated config."""

from __future__ import annotations


def test_git_repo_commits_at_fixed_dates_and_pushes_to_a_bare_origin(git_repo):
    repo = git_repo()
    repo.set_model("iris", "1.1.0", metrics={"accuracy": 0.98})
    repo.commit("iris: retrain")
    log = repo.git("log", "--format=%an|%aI|%cI|%s").splitlines()
    assert log == [
        "Ada Lovelace|2024-01-02T12:00:00+00:00|2024-01-02T12:00:00+00:00|iris: retrain",
        "Ada Lovelace|2024-01-01T12:00:00+00:00|2024-01-01T12:00:00+00:00|Add the example models",
    ]
    assert repo.git("--git-dir", str(repo.origin), "rev-parse", "main").strip() == repo.shas[0]
    assert repo.git("config", "user.email").strip() == "runner@example.com"

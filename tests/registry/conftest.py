"""Fixtures for registry tests: an isolated HOME and git config, and real git repositories.

`git_repo()` builds a working repository (a copy of examples/repo-layout by default) whose `origin`
is a bare repository, and commits at fixed, increasing dates so history and its output are stable.
Shared by the read side (models, history, show, compare, tag) and the edits (bump, promote, rollback).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from support import copy_example

from gitops_ml.cli.main import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "repo-layout"
# 2024-01-01T12:00:00Z; commit n is dated FIRST_DATE + n days
FIRST_DATE = 1_704_110_400
DAY = 86_400
AUTHOR = ("Ada Lovelace", "ada@example.com")


@pytest.fixture(autouse=True)
def isolated_git(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and git config of our own: no user or system config can change what git does."""
    home = tmp_path_factory.mktemp("home")
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Test Runner\n\temail = runner@example.com\n"
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n[tag]\n\tgpgSign = false\n"
        '[commit]\n\tgpgSign = false\n[protocol "file"]\n\tallow = always\n'
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in (
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_AUTHOR_DATE",
        "GIT_COMMITTER_DATE",
        "GITHUB_TOKEN",
        "GITHUB_API_URL",
        "GITOPS_ML_TRACEBACK",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


def run_git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run git; fail the test with git's own message when it fails."""
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc.stdout


@dataclass
class GitRepo:
    """A working repository with a bare `origin`; every commit gets the next fixed date."""

    path: Path
    origin: Path
    commits: int = 0
    shas: list[str] = field(default_factory=list)

    def git(self, *args: str, date: int | None = None) -> str:
        env = dict(os.environ)
        if date is not None:
            env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"{date} +0000"
        return run_git(self.path, *args, env=env)

    def next_date(self) -> int:
        return FIRST_DATE + self.commits * DAY

    def write(self, rel: str, content: str | bytes) -> Path:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
        return target

    def read(self, rel: str) -> str:
        return (self.path / rel).read_text()

    def replace(self, rel: str, old: str, new: str) -> None:
        """Replace text that must occur in the file (a typo in a test fails loudly)."""
        text = self.read(rel)
        assert old in text, f"{old!r} not in {rel}"
        self.write(rel, text.replace(old, new, 1))

    def commit(self, message: str, *, author: tuple[str, str] = AUTHOR, date: int | None = None) -> str:
        """Stage everything and commit at the next fixed date (or `date`); returns the commit id."""
        when = self.next_date() if date is None else date
        self.git("add", "-A")
        self.git(
            "-c",
            f"user.name={author[0]}",
            "-c",
            f"user.email={author[1]}",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            message,
            date=when,
        )
        self.commits += 1
        sha = self.git("rev-parse", "HEAD").strip()
        self.shas.append(sha)
        return sha

    def push(self, *refs: str) -> None:
        self.git("push", "-q", "origin", *(refs or ("HEAD:refs/heads/main",)))

    def tags(self) -> dict[str, str]:
        """Tag name -> id of the commit it points at (peeled)."""
        out = self.git("for-each-ref", "--format=%(refname:strip=2) %(objectname) %(*objectname)", "refs/tags")
        tags = {}
        for line in out.splitlines():
            name, obj, peeled = (line.split(" ") + [""])[:3]
            tags[name] = peeled or obj
        return tags

    # --- model edits in the shape a retraining produces --------------------------------------

    def set_model(
        self,
        model: str,
        version: str,
        *,
        artifact: bytes | None = None,
        metrics: dict[str, float] | None = None,
        lineage: dict[str, str] | None = None,
    ) -> None:
        """Rewrite models/<model>/model.yaml with a new version (and artifact file, metrics)."""
        model_dir = f"models/{model}"
        current = self.read(f"{model_dir}/model.yaml")
        doc: dict[str, Any] = yaml.safe_load(current)
        doc["version"] = version
        if artifact is not None:
            self.write(f"{model_dir}/{doc['artifact']['uri']}", artifact)
            doc["artifact"]["sha256"] = hashlib.sha256(artifact).hexdigest()
        if metrics is not None:
            doc["metrics"] = metrics
        if lineage is not None:
            doc["lineage"] = lineage
        self.write(f"{model_dir}/model.yaml", yaml.safe_dump(doc, sort_keys=False))

    def set_pin(self, environment: str, model: str, pin: str) -> None:
        """Point deployments/<environment>/<model>.yaml at `pin` (`iris` or `iris@1.2.0`)."""
        rel = f"deployments/{environment}/{model}.yaml"
        lines = self.read(rel).splitlines(keepends=True)
        out = [f"model: {pin}\n" if line.startswith("model:") else line for line in lines]
        assert out != lines or f"model: {pin}\n" in lines, f"no `model:` line in {rel}"
        self.write(rel, "".join(out))


@pytest.fixture
def git_repo(tmp_path: Path) -> Callable[..., GitRepo]:
    """Factory: git_repo(example=True) -> GitRepo with the example committed and pushed (when example)."""
    counter = iter(range(1000))

    def make(example: bool = True, push: bool = True) -> GitRepo:
        n = next(counter)
        origin = tmp_path / f"origin-{n}.git"
        work = tmp_path / f"repo-{n}"
        run_git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
        run_git(tmp_path, "init", "-q", "-b", "main", str(work))
        repo = GitRepo(work, origin)
        repo.git("remote", "add", "origin", str(origin))
        if example:
            copy_example(work)
            repo.commit("Add the example models")
            if push:
                repo.push()
        return repo

    return make


@pytest.fixture
def invoke() -> Callable[..., Result]:
    """invoke(*args) runs the CLI in-process (stdout and stderr kept apart); returns click's Result."""

    def run(*args: str | Path) -> Result:
        runner = CliRunner()
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture
def chdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    yield monkeypatch.chdir

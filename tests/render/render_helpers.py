"""Helpers of the render tests: the CLI in process, and example copies that become real git
repositories committed at fixed dates."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result

from gitops_ml.cli.main import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "repo-layout"
FIRST_DATE = 1_704_110_400  # 2024-01-01T12:00:00Z; commit n is dated FIRST_DATE + n days


def run(*args: str | Path) -> Result:
    """`gitops-ml ARGS`, in process; stdout and stderr are kept apart."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@dataclass
class Repo:
    """A copy of the example repository; `commit()` makes it (once) a git repository."""

    path: Path
    commits: int = 0

    def git(self, *args: str) -> str:
        date = f"{FIRST_DATE + self.commits * 86_400} +0000"
        env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        proc = subprocess.run(["git", *args], cwd=self.path, capture_output=True, text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def commit(self, message: str) -> str:
        if not (self.path / ".git").exists():
            self.git("init", "-q", "-b", "main")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        self.commits += 1
        return self.git("rev-parse", "HEAD").strip()

    def edit(self, rel: str, old: str, new: str) -> None:
        target = self.path / rel
        text = target.read_text()
        assert old in text, f"{old!r} not in {rel}"
        target.write_text(text.replace(old, new, 1))

    def read(self, rel: str) -> str:
        return (self.path / rel).read_text()

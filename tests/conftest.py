"""Session-wide isolation: a private HOME and git configuration, so no test reads the user's
settings or writes outside its temporary directories."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:
    from tests.s3store import S3Store


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = tmp_path_factory.mktemp("home")
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = Test User\n\temail = test@example.com\n"
        "[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n[tag]\n\tgpgsign = false\n"
        '[protocol "file"]\n\tallow = always\n'
    )
    os.environ["HOME"] = str(home)
    os.environ["GIT_CONFIG_GLOBAL"] = str(gitconfig)
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    os.environ.setdefault("XDG_CACHE_HOME", str(home / ".cache"))
    # serve and predict run in this Python unless a test asks for the model's own environment
    # (--env-manager venv, tests/serving/test_predict.py and test_serve_env.py)
    os.environ["GITOPS_ML_ENV_MANAGER"] = "local"
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GITHUB_TOKEN", "GITHUB_API_URL"):
        os.environ.pop(var, None)


@pytest.fixture(scope="session")
def s3_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator["S3Store"]:
    """A real S3 store (SeaweedFS) on 127.0.0.1 for the whole session; required in CI."""
    from tests.s3store import start_seaweedfs
    from tests.support import require

    try:
        store = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    except (FileNotFoundError, RuntimeError) as exc:
        require(False, f"SeaweedFS S3 store: {exc}")
        raise
    try:
        yield store
    finally:
        store.stop()

"""bump's command-line inputs: one version part; each refusal is a usage error (exit 2) and writes nothing."""

from __future__ import annotations

from typing import Callable

import pytest
from click.testing import Result

from tests.registry.conftest import GitRepo
from tests.registry.edit_support import repo, state  # noqa: F401


@pytest.mark.parametrize(("first", "second"), [("--major", "--patch"), ("--major", "--minor"), ("--minor", "--patch")])
def test_two_version_parts_are_a_usage_error(repo: GitRepo, invoke: Callable[..., Result], first: str, second: str) -> None:
    before = state(repo)
    result = invoke("bump", "iris", first, second)
    assert result.exit_code == 2
    assert f"{first} and {second} cannot be used together" in result.stderr
    assert state(repo) == before

"""Fixtures for render tests: fresh copies of the example repository (see render_helpers.Repo)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from render.render_helpers import Repo
from support import copy_example


@pytest.fixture
def example_repo(tmp_path: Path) -> Callable[[], Repo]:
    """Factory: a fresh copy of examples/repo-layout (without its rendered deploy/)."""

    def make() -> Repo:
        target = tmp_path / f"repo{len(list(tmp_path.iterdir()))}"
        copy_example(target, without=("deploy", "__pycache__"))
        return Repo(target)

    return make

"""Fixtures for build tests: a copy of the example repository committed to git, and a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from pathlib import Path
from typing import Iterator

import pytest
from support import copy_example

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "repo-layout"


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    copy_example(repo)
    # iris 1.0.0 as registered had no lock; the build tests start from a model that commits one (the
    # example's current lock, resolved from the same requirements.txt)
    iris = repo / "models" / "iris"
    (iris / "requirements.lock").write_bytes((EXAMPLE / "models" / "iris" / "requirements.lock").read_bytes())
    manifest = iris / "manifest.yaml"
    text = manifest.read_text()
    assert "  requirements: requirements.txt\n" in text and "lock:" not in text
    manifest.write_text(text.replace("  requirements: requirements.txt\n", "  requirements: requirements.txt\n  lock: requirements.lock\n"))
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "example"], check=True)
    return repo


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on 127.0.0.1; yields (directory, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def empty_index(http_dir: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A local package index with no packages, which pip (and the build) is pointed at; its URL."""
    root, base = http_dir
    (root / "simple").mkdir()
    (root / "simple" / "index.html").write_text("<html><body></body></html>")
    monkeypatch.setenv("PIP_INDEX_URL", f"{base}/simple/")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("GITOPS_ML_CACHE_DIR", str(tmp_path / "cache"))
    return f"{base}/simple/"

"""`gitops-ml serve --env E` with a deployment file that enables capture writes it to a local
directory (the user's cache, or --capture-dir), says where at start-up, and never to the image's
system path unless asked."""

from __future__ import annotations

import json
from pathlib import Path

from tests.serving.conftest import EXAMPLES, START_DEADLINE, Server, serve_cli

IMAGE_CAPTURE_DIR = "/var/lib/gitops-ml/capture"


def serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None, environment: str | None = "staging") -> Server:
    server = serve_cli(
        tmp_path,
        EXAMPLES / "iris",
        *(("--env", environment) if environment else ()),
        *args,
        env={"HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache"), **(env or {})},
    )
    server.wait_until(lambda: server.get("/readyz").status_code == 200, "readiness", START_DEADLINE)
    return server


def captured(root: Path) -> list[dict[str, object]]:
    return [json.loads(line) for path in sorted(root.rglob("*.jsonl")) for line in path.read_text().splitlines()]


def score_and_stop(server: Server) -> None:
    try:
        answer = server.post(content=(EXAMPLES / "iris" / "sample.json").read_bytes().strip())
        assert answer.status_code == 200, answer.text
    finally:
        assert server.stop() == 0, server.log()


def test_local_serve_captures_into_the_user_cache_and_says_so(tmp_path: Path) -> None:
    server = serve(tmp_path)
    score_and_stop(server)
    local = tmp_path / "cache" / "gitops-ml" / "capture"
    records = captured(local)
    assert len(records) == 1, server.log()
    assert f"capture to {local}" in server.log()
    assert IMAGE_CAPTURE_DIR not in server.log()


def test_capture_dir_option_and_variable_choose_the_directory(tmp_path: Path) -> None:
    chosen = tmp_path / "my-capture"
    server = serve(tmp_path, "--capture-dir", str(chosen))
    score_and_stop(server)
    assert len(captured(chosen)) == 1 and f"capture to {chosen}" in server.log()
    assert not (tmp_path / "cache" / "gitops-ml" / "capture").exists()

    from_env = tmp_path / "from-env"
    server = serve(tmp_path, env={"GITOPS_ML_CAPTURE_DIR": str(from_env)})
    score_and_stop(server)
    assert len(captured(from_env)) == 1 and f"capture to {from_env}" in server.log()


def test_serve_without_capture_says_nothing_about_it(tmp_path: Path) -> None:
    server = serve(tmp_path, environment=None)
    score_and_stop(server)
    assert "capture" not in server.stderr.read_text().split("\n", 1)[0]
    assert not (tmp_path / "cache" / "gitops-ml" / "capture").exists()

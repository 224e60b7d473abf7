"""`gitops-ml serve --env-manager venv` brings the model's own environment (made from its requirements,
reused by `predict`), and `--reload` restarts the server when score.py changes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support import EXAMPLE

from tests.serving.conftest import START_DEADLINE, serve_cli


@pytest.mark.slow
def test_serve_runs_in_the_models_environment_and_reloads_a_changed_score_py(tmp_path: Path) -> None:
    model = tmp_path / "iris"
    shutil.copytree(EXAMPLE / "models" / "iris", model)
    sample = (model / "sample.json").read_bytes()
    server = serve_cli(tmp_path, model, "--env-manager", "venv", "--reload")
    try:
        # making the environment (uv, the model's requirements) is part of starting
        server.wait_until(lambda: server.get("/readyz").status_code == 200, "readiness", START_DEADLINE + 240)
        assert server.post(content=sample).json() == {"predictions": [0, 1, 2]}
        answer = server.get("/")
        assert answer.status_code == 200
        envs = [p for p in (Path(os.environ["XDG_CACHE_HOME"]) / "gitops-ml" / "envs").iterdir() if p.is_dir()]
        # the server process runs the environment's interpreter, not this one
        children = subprocess.run(
            ["ps", "-ww", "-o", "args=", "--ppid", str(server.process.pid)], capture_output=True, text=True
        )
        assert any(str(e / "bin" / "python") in children.stdout for e in envs), children.stdout

        score = model / "score.py"
        score.write_text(
            score.read_text().replace('return {"predictions": ', 'return {"reloaded": True, "predictions": ')
        )

        def reloaded() -> bool:
            r = server.post(content=sample)
            return r.status_code == 200 and r.json().get("reloaded") is True

        server.wait_until(reloaded, "the changed score.py to be served", START_DEADLINE)
        assert "reloading: " in server.log() and "score.py changed" in server.log()
    finally:
        child_pids = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(server.process.pid)], capture_output=True, text=True
        ).stdout.split()
        assert server.stop() in (0, -15), server.log()
    # SIGTERM to `gitops-ml serve` stops the model's server it started, not only itself
    for pid in child_pids:
        state = Path(f"/proc/{pid}/stat")
        assert not state.exists() or state.read_text().split(") ")[-1].startswith("Z"), f"server {pid} outlived serve"
    assert json.loads(sample)  # the sample itself is untouched

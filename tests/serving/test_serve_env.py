"""`gitops-ml serve --env-manager venv` brings the model's own environment (made from its requirements,
reused by `predict`), and `--reload` restarts the server when score.py changes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
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

        # model.yaml and the manifest are read again too: a new version, a new schema
        spec = model / "model.yaml"
        spec.write_text(re.sub(r"(?m)^version: .*$", "version: 9.9.9", spec.read_text()))
        server.wait_until(
            lambda: server.post(content=sample).headers.get("x-model-version") == "9.9.9",
            "the new version",
            START_DEADLINE,
        )
        (model / "schema2.json").write_text((model / "schema.json").read_text().replace('"data"', '"rows"'))
        manifest = model / "manifest.yaml"
        manifest.write_text(manifest.read_text().replace("schema: schema.json", "schema: schema2.json"))
        rows = sample.replace(b'"data"', b'"rows"')
        server.wait_until(lambda: server.post(content=rows).status_code == 200, "the new schema", START_DEADLINE)
        assert server.post(content=sample).status_code == 422  # the old input name is refused now
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


@pytest.mark.slow
def test_a_killed_serve_leaves_no_server_behind(tmp_path: Path) -> None:
    """kill -9 of `gitops-ml serve` (no chance to stop its server) still stops the model's server: the
    port is free again for the next `serve`."""
    key = "killed-serve-key-7f3a"
    server = serve_cli(tmp_path, EXAMPLE / "models" / "iris", "--env-manager", "venv", env={"GITOPS_ML_API_KEY": key})
    server.wait_until(lambda: server.get("/readyz").status_code == 200, "readiness", START_DEADLINE + 240)
    sample = (EXAMPLE / "models" / "iris" / "sample.json").read_bytes()
    assert server.post(content=sample).status_code == 401
    assert server.post(content=sample, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(server.process.pid)], capture_output=True, text=True
    ).stdout.split()
    assert children, "serve runs the model's server as its child"
    server.process.kill()
    server.process.wait(10)

    def gone() -> bool:
        return all(
            not Path(f"/proc/{pid}/stat").exists()
            or Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")
            for pid in children
        )

    deadline = time.monotonic() + 30
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling interval of a deadline loop
    assert gone(), f"the model's server {children} outlived a killed serve"
    # the key went through a pipe: no file anywhere in the temporary directory holds it
    leftovers = [
        p for p in Path(tempfile.gettempdir()).glob("gitops-ml-keys-*/*") if key in p.read_text(errors="replace")
    ]
    assert not leftovers, leftovers

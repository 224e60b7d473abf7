"""`gitops-ml serve` ends with a located error and a non-zero exit, before it says it serves, when the
model files cannot be used, the port is taken, or score.py fails to load or init(); and a key can be
given without showing it in the process list."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from gitops_ml.cli.main import cli
from tests.serving.conftest import EXAMPLES, START_DEADLINE, free_port, serve_cli


def model_copy(tmp_path: Path) -> Path:
    target = tmp_path / "models" / "iris"
    shutil.copytree(EXAMPLES / "iris", target)
    return target


def serve(model: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_ML_") or k == "GITOPS_ML_ENV_MANAGER"}
    return subprocess.run(
        [sys.executable, "-m", "gitops_ml", "serve", str(model), *args],
        cwd=model.parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_a_schema_nested_too_deeply_is_a_located_error(tmp_path: Path) -> None:
    model = model_copy(tmp_path)
    depth = 600
    (model / "schema.json").write_text(
        '{"type": "object", "properties": {"data": ' + '{"type": "array", "items": ' * depth + "{}" + "}" * depth + "}}"
    )
    run = serve(model, "--port", str(free_port()))
    assert run.returncode == 1, run.stderr
    assert "error: models/iris/schema.json: the request schema nests too deeply to be checked" in run.stderr
    assert "internal error" not in run.stderr and "serving iris" not in run.stderr


def test_a_schema_that_is_not_json_is_located(tmp_path: Path) -> None:
    model = model_copy(tmp_path)
    (model / "schema.json").write_text('{"type": "object",\n  "properties": {,}}\n')
    run = serve(model, "--port", str(free_port()))
    assert run.returncode == 1, run.stderr
    assert "error: models/iris/schema.json:2:18: not valid JSON: unexpected character" in run.stderr


def test_a_busy_port_is_one_error_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = serve(model_copy(tmp_path), "--port", str(port))
    assert run.returncode == 3, run.stderr
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in run.stderr
    assert f"hint: another process listens on port {port}: stop it, or pass another port" in run.stderr
    assert "serving iris" not in run.stderr and '"ready"' not in run.stderr
    assert all(line.startswith(("error:", "hint:", "{")) for line in run.stderr.splitlines()), run.stderr


def test_init_that_fails_under_serve_exits_with_the_located_error(tmp_path: Path) -> None:
    model = model_copy(tmp_path)
    (model / "score.py").write_text(
        "import os\n\n\ndef init():\n    open(os.path.join(os.path.dirname(__file__), 'missing.bin'))\n\n\ndef run(data):\n    return 0\n"
    )
    run = serve(model, "--port", str(free_port()))
    assert run.returncode == 1, run.stderr
    assert (
        "error: models/iris/score.py:5:5: init() failed: FileNotFoundError: [Errno 2] No such file or directory"
        in run.stderr
    )
    assert "Traceback" not in run.stderr.split("error:")[-1]


def test_a_missing_package_under_env_manager_local_says_how_to_get_it(tmp_path: Path) -> None:
    model = model_copy(tmp_path)
    (model / "score.py").write_text("import xgboost_not_installed_here\n\n\ndef run(data):\n    return 0\n")
    run = serve(model, "--port", str(free_port()), "--env-manager", "local")
    assert run.returncode == 1, run.stderr
    assert "error: models/iris/score.py:1:1: importing score.py failed: ModuleNotFoundError" in run.stderr
    assert "hint: this Python has no module 'xgboost_not_installed_here'" in run.stderr
    assert "without --env-manager local make the model's own environment" in run.stderr


def test_a_run_the_server_cannot_call_stops_serve_at_the_def(tmp_path: Path) -> None:
    model = model_copy(tmp_path)
    (model / "score.py").write_text("def run(data, options):\n    return 0\n")
    run = serve(model, "--port", str(free_port()))
    assert run.returncode == 1, run.stderr
    assert (
        "error: models/iris/score.py:1:1: run(data, options) needs 2 arguments, but the server calls run(data) with one"
        in run.stderr
    )
    assert "hint: write `def run(data):`" in run.stderr


def test_a_key_from_a_file_or_the_environment_stays_out_of_the_process_list(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("file-key-0123\n")
    server = serve_cli(
        tmp_path, EXAMPLES / "iris", "--api-key-file", str(key_file), env={"GITOPS_ML_API_KEY": "env-key-4567"}
    )
    process = server.process
    try:
        server.wait_until(lambda: server.get("/readyz").status_code == 200, "readiness", START_DEADLINE)
        sample = json.loads((EXAMPLES / "iris" / "sample.json").read_text())
        for key in ("file-key-0123", "env-key-4567"):
            assert server.post(sample, headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert server.post(sample).status_code == 401
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        assert b"file-key-0123" not in cmdline and b"env-key-4567" not in cmdline
        assert "file-key-0123" not in server.log()
    finally:
        assert server.stop() == 0


def test_serve_help_says_how_to_keep_a_key_private() -> None:
    text = " ".join(CliRunner().invoke(cli, ["serve", "--help"], terminal_width=200).output.split())
    assert "--api-key-file" in text and "$GITOPS_ML_API_KEY" in text
    assert "visible to every user of the machine in the process list (/proc/PID/cmdline)" in text

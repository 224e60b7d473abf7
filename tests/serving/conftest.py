"""Real scoring servers for the serving tests: `python -m gitops_ml.serving` under uvicorn on
127.0.0.1, started from a model directory, polled for readiness with a deadline (no sleeps)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "repo-layout" / "models"
KEY = "test-primary-key"
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"')
SECOND_KEY = "test-secondary-key"
START_DEADLINE = 60.0  # a loaded 2-core machine imports scikit-learn slowly


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    stdout: Path
    stderr: Path
    keys_dir: Path
    headers: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {KEY}"})

    def post(
        self,
        body: Any = None,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        path: str = "/score",
        timeout: float = 30,
    ) -> httpx.Response:
        merged = {"Content-Type": "application/json", **self.headers, **(headers or {})}
        if content is None:
            import orjson

            content = orjson.dumps(body)
        return httpx.post(self.url + path, content=content, headers=merged, timeout=timeout)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=10)

    def log(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def wait_until(self, predicate: Callable[[], bool], what: str, deadline: float = START_DEADLINE) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"server exited ({self.process.returncode}) while waiting for {what}:\n{self.log()}"
                )
            try:
                if predicate():
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.02)  # polling interval of a deadline loop, not an ordering sleep
        raise AssertionError(f"timed out waiting for {what}:\n{self.log()}")

    def metric(self, selector: str) -> float:
        """The value of the first sample named like `selector` that carries every label it names
        (`name` or `name{a="x",b="y"}`); the server adds its identity labels (model, version, ...)."""
        name, _, wanted = selector.partition("{")
        labels = set(_LABEL.findall(wanted))
        for line in self.get("/metrics").text.splitlines():
            sample = _SAMPLE.match(line)
            if sample and sample["name"] == name and labels <= set(_LABEL.findall(sample["labels"] or "")):
                return float(sample["value"])
        return 0.0

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def serve_cli(
    tmp_path: Path, model: Path, *args: str, env: dict[str, str] | None = None, strip: tuple[str, ...] = ("GITOPS_ML_",)
) -> Server:
    """`gitops-ml serve MODEL --port P ARGS` started as a user starts it: none of this process's variables
    that begin with `strip` (GITOPS_ML_ENV_MANAGER kept: the suite serves in this Python), then `env`."""
    port = free_port()
    variables = {k: v for k, v in os.environ.items() if not k.startswith(strip) or k == "GITOPS_ML_ENV_MANAGER"}
    variables.update(PYTHONUNBUFFERED="1", **(env or {}))
    out, err = tmp_path / f"serve-{port}.out", tmp_path / f"serve-{port}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:  # the child keeps its own copies
        process = subprocess.Popen(
            [sys.executable, "-m", "gitops_ml", "serve", str(model), "--port", str(port), *args],
            env=variables,
            stdout=stdout,
            stderr=stderr,
        )
    return Server(process, f"http://127.0.0.1:{port}", out, err, tmp_path, headers={})


class ServerPool:
    """Starts servers under one temporary directory and kills whatever is left at the end."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.started: list[Server] = []

    def start(self, model_dir: Path, *, ready: bool = True, args: tuple[str, ...] = (), **settings: Any) -> Server:
        n = len(self.started)
        keys_dir = self.base / f"keys-{n}"
        keys_dir.mkdir()
        (keys_dir / "primary").write_text(KEY + "\n")
        (keys_dir / "secondary").write_text(SECOND_KEY + "\n")
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_ML_")}
        env.update(
            GITOPS_ML_MODEL_NAME=model_dir.name,
            GITOPS_ML_MODEL_VERSION="1.2.3",
            GITOPS_ML_KEYS_DIR=str(keys_dir),
            GITOPS_ML_CAPTURE_DIR=str(self.base / f"capture-{n}"),
            PYTHONUNBUFFERED="1",
        )
        env.update(
            {
                f"GITOPS_ML_{k.upper()}": ("true" if v is True else "false" if v is False else str(v))
                for k, v in settings.items()
            }
        )
        stdout, stderr = self.base / f"server-{n}.out", self.base / f"server-{n}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:  # the child keeps its own copies
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gitops_ml.serving",
                    "--model-dir",
                    str(model_dir),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    *args,
                ],
                env=env,
                stdout=out,
                stderr=err,
            )
        server = Server(process, f"http://127.0.0.1:{port}", stdout, stderr, keys_dir)
        self.started.append(server)
        if ready:
            server.wait_until(lambda: server.get("/readyz").status_code == 200, "readiness")
        else:
            server.wait_until(lambda: server.get("/healthz").status_code == 200, "liveness")
        return server

    def close(self) -> None:
        for server in self.started:
            if server.process.poll() is None:
                server.process.kill()
                server.process.wait(10)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    pool = ServerPool(tmp_path)
    yield pool.start
    pool.close()


@pytest.fixture(scope="module")
def module_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPool]:
    pool = ServerPool(tmp_path_factory.mktemp("servers"))
    yield pool
    pool.close()


@pytest.fixture
def model_copy(tmp_path: Path) -> Callable[[str], Path]:
    """A copy of an example model directory (tests may edit score.py without touching examples/)."""

    def copy(name: str) -> Path:
        target = tmp_path / "models" / name
        shutil.copytree(EXAMPLES / name, target)
        return target

    return copy


def write_model(directory: Path, score: str, schema: str | None = None) -> Path:
    """A model directory with the given score.py and (by default) the iris schema."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "score.py").write_text(score)
    (directory / "schema.json").write_text(
        schema if schema is not None else (EXAMPLES / "iris" / "schema.json").read_text()
    )
    (directory / "sample.json").write_text((EXAMPLES / "iris" / "sample.json").read_text())
    return directory


@pytest.fixture(scope="module")
def module_server_iris(module_servers: ServerPool) -> Server:
    return module_servers.start(EXAMPLES / "iris")

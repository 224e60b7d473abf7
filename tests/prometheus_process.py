"""Debian's `prometheus`, started for a test on a free port with a config the test wrote, and stopped
after it: the rollout analysis and the monitoring rules are evaluated by the real server."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from support import require

START_SECONDS = 60


@contextlib.contextmanager
def prometheus_process(home: Path, config: Path, *flags: str) -> Iterator[tuple[str, "subprocess.Popen[bytes]", Path]]:
    """(URL, process, log file) of a ready Prometheus reading `config`, its data under `home`."""
    binary = shutil.which("prometheus")
    require(binary is not None, "Debian's prometheus is not installed (apt-get install prometheus)")
    assert binary is not None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = home / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                *flags,
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"Prometheus exited at start ({process.returncode}):\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/-/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Prometheus was not ready within {START_SECONDS} s:\n{log.read_text()}")
            time.sleep(0.1)  # polling interval of a deadline loop
        yield url, process, log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

#!/usr/bin/env python3
"""What strict settings parsing would cost the image: pydantic-settings against the hand-written parser
(gitops_ml.serving.settings), side by side in one run (issue 10, item 2).

Prints the median wall time of a fresh interpreter importing each (and reading the same GITOPS_ML_*
variables), the server's whole import for scale, and the installed size each adds to the image.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import statistics
import subprocess
import sys
import time
from pathlib import Path

HAND = "from gitops_ml.serving.settings import ServerSettings; ServerSettings.from_env()"
PYDANTIC = """
from pydantic_settings import BaseSettings, SettingsConfigDict
from typing import Literal
from pydantic import Field

class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GITOPS_ML_", extra="ignore")
    model_name: str = "model"
    model_version: str = "0.0.0"
    model_dir: str = "/opt/gitops-ml/model"
    port: int = Field(8080, ge=0, le=65535)
    host: str = "0.0.0.0"
    auth_enabled: bool = True
    keys_dir: str = "/var/run/secrets/gitops-ml/keys"
    max_concurrent: int = Field(1, ge=1, le=1024)
    queue_size: int = Field(10, ge=0, le=100000)
    queue_timeout: float = Field(5.0, gt=0, le=600)
    request_timeout: float = Field(5.0, gt=0, le=3600)
    max_body_bytes: int = Field(10485760, ge=1)
    body_timeout: float = Field(30.0, gt=0)
    body_budget_bytes: int = Field(0, ge=0)
    reject_status: Literal[503, 429] = 503
    batch_enabled: bool = False
    batch_max_size: int = Field(32, ge=1, le=4096)
    batch_max_wait_ms: float = Field(2.0, ge=0, le=1000)
    access_log: bool = True
    capture_enabled: bool = False
    capture_sampling: float = Field(1.0, ge=0, le=1)
    capture_dir: str = "/var/lib/gitops-ml/capture"
    capture_max_file_bytes: int = Field(67108864, ge=1024)
    grace_seconds: float = Field(30.0, gt=0)
    path_prefix: str = Field("", pattern=r"^(/[A-Za-z0-9._~-]+)*$")

Settings()
"""
CASES = {
    "nothing (interpreter start)": "pass",
    "hand-written (gitops_ml.serving.settings)": HAND,
    "pydantic-settings, same fields and rules": PYDANTIC,
    "the whole server (gitops_ml.serving.server), for scale": "import gitops_ml.serving.server",
}
DISTRIBUTIONS = ("pydantic", "pydantic-core", "pydantic-settings", "typing-inspection", "annotated-types", "python-dotenv")


def installed_bytes(name: str) -> int:
    try:
        files = importlib.metadata.files(name) or []
    except importlib.metadata.PackageNotFoundError:
        return 0
    total = 0
    for f in files:
        path = Path(str(f.locate()))
        if path.is_file():
            total += path.stat().st_size
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for _ in range(args.runs):  # interleaved, so a busy moment of the machine hits every case alike
        for name, code in CASES.items():
            started = time.perf_counter()
            subprocess.run([args.python, "-c", code], check=True, env={"GITOPS_ML_QUEUE_SIZE": "40", "GITOPS_ML_AUTH_ENABLED": "true"})
            times[name].append(time.perf_counter() - started)
    base = statistics.median(times["nothing (interpreter start)"])
    print(f"| import and parse | median ms ({args.runs} runs) | over interpreter start ms |")
    print("|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median * 1000:.0f} | {(median - base) * 1000:.0f} |")
    print()
    sizes = {name: installed_bytes(name) for name in DISTRIBUTIONS}
    print("installed size pydantic-settings would add to the image: " + ", ".join(f"{n} {s / 1e6:.1f} MB" for n, s in sizes.items() if s)
          + f"; total {sum(sizes.values()) / 1e6:.1f} MB")


if __name__ == "__main__":
    sys.exit(main())

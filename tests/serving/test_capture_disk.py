"""Capture on a disk that fills up: every record is either a whole JSON line on disk or counted in
gitops_ml_capture_dropped, never cut off and never lost silently. The full disk is real: a small
tmpfs mounted for the test (root is needed to mount; in CI it must be available)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from support import require

from tests.serving.conftest import write_model

ECHO = "def run(data):\n    return {'rows': len(data)}\n"
REQUESTS = 400


def test_on_a_full_disk_every_record_is_whole_on_disk_or_counted(start_server, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(disk)], capture_output=True, text=True, check=False
    )
    require(mounted.returncode == 0, f"a 96 KiB tmpfs stands for a full disk; mount failed: {mounted.stderr.strip()}")
    try:
        server = start_server(
            write_model(tmp_path / "echo", ECHO), capture_enabled=True, capture_sampling=1.0, capture_dir=str(disk)
        )
        body = {"data": [[1.25, 2.5, 3.75, 4.5]] * 20}
        for _ in range(REQUESTS):
            assert server.post(body).status_code == 200

        def lines() -> list[bytes]:
            return [
                line for path in sorted(disk.rglob("*.jsonl")) for line in path.read_bytes().splitlines(keepends=True)
            ]

        def accounted() -> bool:
            return len(lines()) + server.metric("gitops_ml_capture_dropped_total") == REQUESTS

        server.wait_until(accounted, "every record written or counted as dropped", deadline=20)
        written = lines()
        assert 0 < len(written) < REQUESTS, "the disk filled up part way"
        for line in written:
            assert line.endswith(b"\n")
            assert json.loads(line)["input"] == body
        assert "capture write failed" in server.stderr.read_text()
        assert server.stop() == 0
        assert len(lines()) == len(written), "nothing more (and no cut line) appeared at shutdown"
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True, check=False)

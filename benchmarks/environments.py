"""A model's own environment (what `serve` and `predict` make with --env-manager venv) made by uv and by
pip, side by side in one run: cold (empty caches), rebuilt with warm caches, and reused.

    .venv/bin/python benchmarks/environments.py [--model examples/repo-layout/models/iris]

Each installer gets caches of its own under a temporary directory; the package index is the network's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from gitops_ml.local.environment import ensure_environment
from gitops_ml.repo.loading import parse_yaml
from gitops_ml.types import Kind, ManifestSpec

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("cold (empty caches)", "rebuilt (caches warm, environment deleted)", "reused")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "examples" / "repo-layout" / "models" / "iris")
    args = parser.parse_args()
    manifest = ManifestSpec.from_doc(
        parse_yaml("manifest.yaml", (args.model / "manifest.yaml").read_bytes(), Kind.MANIFEST).data
    )
    seconds: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="gitops-ml-envs-") as tmp:
        for tool in ("uv", "pip"):
            base = Path(tmp) / tool
            os.environ["UV_CACHE_DIR"], os.environ["PIP_CACHE_DIR"] = str(base / "uv-cache"), str(base / "pip-cache")
            for step in STEPS:
                if step.startswith("rebuilt"):
                    shutil.rmtree(base / "cache" / "envs")
                start = time.perf_counter()
                ensure_environment(
                    args.model, manifest, cache=base / "cache", progress=lambda _: None, force_installer=tool
                )
                seconds[(tool, step)] = time.perf_counter() - start
    print(f"{'environment of ' + args.model.name:45} {'uv':>8} {'pip':>8} {'pip/uv':>8}")
    for step in STEPS:
        uv, pip = seconds[("uv", step)], seconds[("pip", step)]
        ratio = f"{pip / uv:7.1f}x" if uv >= 0.05 else "       -"
        print(f"{step:45} {uv:7.1f}s {pip:7.1f}s {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark `gitops-ml build` against the local registry (run `bash .ci/setup-docker.sh` first).

Measures, in one run: a full build and push of the example's iris model (cold layer cache: the base
image is a fresh one-label derivative, so no earlier build matches; the wheelhouse is resolved
beforehand and reported apart), a rebuild after an artifact-only change
(time, and compressed bytes pushed against the artifact's size), a no-change `build --push`, and
a plain hand-written Dockerfile for the same model (copy everything, install in one layer).
Usage: .venv/bin/python benchmarks/build.py [--registry 127.0.0.1:5000] [--base-image IMAGE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "repo-layout"
MANIFEST_TYPES = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"

HANDWRITTEN = """\
FROM {base}
COPY . /app
RUN python3 -m venv /venv && /venv/bin/pip install --no-index --no-deps --no-cache-dir /app/wheels/*.whl
ENV GITOPS_ML_MODEL_DIR=/app
CMD ["/venv/bin/python", "-m", "gitops_ml.serving"]
"""


def gitops_ml(*args: str, cwd: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gitops_ml", *args, "--format", "json"], cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"gitops-ml {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return seconds, json.loads(proc.stdout)


def layers(registry: str, ref: str) -> dict[str, int]:
    """Compressed layer digests -> sizes, from the registry's manifest of ref."""
    name, tag = ref[len(registry) + 1:].rsplit(":", 1)
    response = httpx.get(f"http://{registry}/v2/{name}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES})
    response.raise_for_status()
    return {layer["digest"]: int(layer["size"]) for layer in response.json()["layers"]}


def image_size(ref: str) -> int:
    out = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", ref], capture_output=True, text=True, check=True)
    return int(out.stdout)


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", default=os.environ.get("GITOPS_ML_TEST_REGISTRY", "127.0.0.1:5000"))
    parser.add_argument("--base-image", default=os.environ.get("GITOPS_ML_TEST_BASE_IMAGE", "gitops-ml-base:bookworm"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gitops-ml-bench-"))
    try:
        repo = work / "repo"
        shutil.copytree(EXAMPLE, repo)
        namespace = f"bench-{uuid.uuid4().hex[:8]}"
        config = repo / "gitops-ml.yaml"
        text = re.sub(r"registry: .*", f"registry: {args.registry}/{namespace}", config.read_text())
        config.write_text(re.sub(r"baseImage: .*", f"baseImage: {args.base_image}", text))
        for cmd in (["init", "-q"], ["add", "-A"], ["-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qm", "bench"]):
            subprocess.run(["git", "-C", str(repo), *cmd], check=True)

        # a base image no earlier build used: every layer above it is built cold, yet later builds in
        # this run share the cache as a CI runner would (`--no-cache` would leave stale layers around)
        base = f"gitops-ml-bench-base:{namespace}"
        subprocess.run(["docker", "build", "-q", "-t", base, "-"], input=f"FROM {args.base_image}\nLABEL bench={namespace}\n",
                       text=True, check=True, capture_output=True, env=dict(os.environ, DOCKER_BUILDKIT="0"))
        config.write_text(re.sub(r"baseImage: .*", f"baseImage: {base}", config.read_text()))
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qam", "base"], check=True)
        # pin the runtime wheel: a checkout edited during the run must not count as a runtime change
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(work / "runtime"), str(ROOT)],
                       check=True, env=dict(os.environ, SOURCE_DATE_EPOCH="315532800"))
        os.environ["GITOPS_ML_RUNTIME_WHEEL"] = str(next((work / "runtime").glob("gitops_ml-*.whl")))
        ctx_seconds, _ = gitops_ml("build", "--model", "iris", "--context-only", str(work / "ctx"), cwd=repo)
        full_seconds, full = gitops_ml("build", "--model", "iris", "--push", cwd=repo)
        first = full["images"][0]
        first_layers = layers(args.registry, first["ref"])

        model_dir = repo / "models" / "iris"
        artifact = model_dir / "model.joblib"
        import joblib  # noqa: PLC0415 - a dev dependency, like scikit-learn

        joblib.dump(joblib.load(artifact), artifact, compress=3)
        digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
        model_yaml = model_dir / "model.yaml"
        model_yaml.write_text(re.sub(r"sha256: \w+", f"sha256: {digest}", model_yaml.read_text()).replace("version: 1.0.0", "version: 1.1.0"))
        re_seconds, rebuilt = gitops_ml("build", "--model", "iris", "--push", cwd=repo)
        second = rebuilt["images"][0]
        new_layers = {d: s for d, s in layers(args.registry, second["ref"]).items() if d not in first_layers}

        noop_seconds, noop = gitops_ml("build", "--model", "iris", "--push", cwd=repo)
        assert noop["images"][0]["status"] == "exists", noop

        # the hand-written comparison: same model, same wheelhouse, everything in one COPY
        plain = work / "plain"
        shutil.copytree(work / "ctx" / "iris" / "model" / "code", plain)
        shutil.copytree(work / "ctx" / "iris" / "model" / "artifact", plain, dirs_exist_ok=True)
        (plain / "wheels").mkdir()
        for wheel in (work / "ctx" / "iris" / "wheels").rglob("*.whl"):
            shutil.copy(wheel, plain / "wheels" / wheel.name)
        (plain / "Dockerfile").write_text(HANDWRITTEN.format(base=base))
        plain_ref = f"{args.registry}/{namespace}/iris-plain:1"
        start = time.perf_counter()
        subprocess.run(["docker", "build", "--no-cache", "-q", "-t", plain_ref, str(plain)], check=True, capture_output=True,
                       env=dict(os.environ, DOCKER_BUILDKIT="0"))
        plain_seconds = time.perf_counter() - start

        ours = image_size(second["ref"])
        theirs = image_size(plain_ref)
        t = first["timings"]
        print(f"context only (wheelhouse resolve, warm pip cache):  {ctx_seconds:.1f} s")
        print(f"full build + push, cold cache:     {full_seconds:6.1f} s  (build {t.get('build', 0):.1f} s, push {t.get('push', 0):.1f} s, "
              f"{len(first_layers)} layers, {mb(sum(first_layers.values()))} compressed)")
        print(f"artifact-only change, build+push:  {re_seconds:6.1f} s  = {100 * re_seconds / full_seconds:.0f} % of full (target < 25 %)")
        print(f"  layers pushed: {len(new_layers)}, {sum(new_layers.values())} bytes compressed; artifact is {artifact.stat().st_size} bytes "
              f"(+ model.yaml {model_yaml.stat().st_size} bytes in the same layer)")
        print(f"no-change build --push:            {noop_seconds:6.2f} s  (target < 2 s; status {noop['images'][0]['status']}, no build API call)")
        print(f"hand-written Dockerfile build:     {plain_seconds:6.1f} s  (docker build --no-cache)")
        print(f"image size: gitops-ml {mb(ours)}, hand-written {mb(theirs)} ({100 * (ours - theirs) / theirs:+.0f} %)")
        subprocess.run(["docker", "rmi", plain_ref, first["ref"], second["ref"], base], check=False, capture_output=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Registry benchmark: `gitops-ml history M` and `models` against `gto history M` and `gto show`.

Builds (git fast-import, a few seconds) a repository of N models and C commits, each commit a version
bump tagged `<model>@v<version>` like GTO does, then times every command as a separate process on
the same repository in one run. Ours run --repeat times (median reported); GTO runs once each with
a timeout. Nothing is cached between runs. Usage: python benchmarks/registry.py [--help]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

T0 = 1_700_000_000
IDENT = "Bench <bench@example.invalid>"
REPOSITORY_YAML = """apiVersion: gitops-ml.dev/v1
kind: Repository
name: bench
image:
  registry: registry.example.com/ml
engine: argocd
environments:
  staging:
    namespace: ml-staging
  prod:
    namespace: ml-prod
"""
MANIFEST_YAML = "apiVersion: gitops-ml.dev/v1\nkind: Manifest\nscoring:\n  script: score.py\n"
SCORE_PY = "def init():\n    pass\n\n\ndef run(data):\n    return data\n"


def _data(text: str) -> bytes:
    raw = text.encode()
    return f"data {len(raw)}\n".encode() + raw + b"\n"


def model_yaml(model: str, version: str, rng: random.Random) -> str:
    return (
        "apiVersion: gitops-ml.dev/v1\nkind: Model\n"
        f"name: {model}\nversion: {version}\n"
        f"artifact:\n  uri: s3://models/{model}/{version}/model.joblib\n  sha256: {rng.getrandbits(256):064x}\n"
        f"metrics:\n  accuracy: {rng.uniform(0.8, 0.99):.4f}\n"
        f"lineage:\n  runId: run-{rng.getrandbits(32):08x}\n"
    )


def deployment_yaml(pin: str) -> str:
    return f"apiVersion: gitops-ml.dev/v1\nkind: Deployment\nmodel: {pin}\n"


def build_repo(root: Path, n_models: int, n_commits: int) -> None:
    """N models, C commits on main, each bumping one model and tagged in GTO's grammar (annotated).

    The first bump of a model also adds its deployments (staging tracks, prod is pinned); every
    fifth later bump promotes prod in the same commit, so histories carry environment runs.
    """
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    rng = random.Random(0)
    names = [f"model-{i:04d}" for i in range(n_models)]
    bumps = dict.fromkeys(names, 0)
    out = bytearray()
    for c in range(n_commits):
        model = names[c] if c < n_models else rng.choice(names)
        bumps[model] += 1
        version = f"1.{bumps[model]}.0"
        when = T0 + c * 60
        message = f"{model}: register {version}"
        out += f"commit refs/heads/main\nmark :{c + 1}\ncommitter {IDENT} {when} +0000\n".encode() + _data(message)
        if c:
            out += f"from :{c}\n".encode()
        else:
            out += b"M 100644 inline gitops-ml.yaml\n" + _data(REPOSITORY_YAML)
        out += f"M 100644 inline models/{model}/model.yaml\n".encode() + _data(model_yaml(model, version, rng))
        if bumps[model] == 1:
            out += f"M 100644 inline models/{model}/manifest.yaml\n".encode() + _data(MANIFEST_YAML)
            out += f"M 100644 inline models/{model}/score.py\n".encode() + _data(SCORE_PY)
            out += f"M 100644 inline deployments/staging/{model}.yaml\n".encode() + _data(deployment_yaml(model))
        if bumps[model] == 1 or bumps[model] % 5 == 0:
            out += f"M 100644 inline deployments/prod/{model}.yaml\n".encode() + _data(deployment_yaml(f"{model}@{version}"))
        out += f"tag {model}@v{version}\nfrom :{c + 1}\ntagger {IDENT} {when} +0000\n".encode()
        out += _data(f"Registering artifact {model} version v{version}")
    subprocess.run(["git", "fast-import", "--quiet"], input=bytes(out), cwd=root, check=True)
    subprocess.run(["git", "checkout", "-q", "main"], cwd=root, check=True)


@dataclass
class Timing:
    label: str
    command: str
    runs: list[float]
    returncode: int
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")


def time_command(label: str, cmd: list[str], cwd: Path, repeat: int, timeout: float) -> Timing:
    runs: list[float] = []
    code = 0
    note = ""
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            runs.append(time.perf_counter() - start)
            return Timing(label, " ".join(cmd), runs, -1, f"timed out after {timeout:.0f} s")
        runs.append(time.perf_counter() - start)
        code = proc.returncode
        if code != 0:
            note = proc.stderr.decode(errors="replace").strip().splitlines()[-1:][0] if proc.stderr.strip() else "failed"
            break
    return Timing(label, " ".join(cmd), runs, code, note)


def gto_executable(venv: Path, install: bool) -> Path | None:
    """gto from its own venv (GTO pins old dependencies; it must not share ours)."""
    gto = venv / "bin" / "gto"
    if gto.exists():
        return gto
    if not install:
        return None
    print(f"gto: creating {venv} and installing gto from PyPI ...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "gto"], check=True, capture_output=True, timeout=600)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"gto: could not install ({exc}); GTO comparison skipped", file=sys.stderr)
        return None
    return gto if gto.exists() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--model", default="model-0007", help="model whose history is timed")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each gitops-ml command (median reported)")
    parser.add_argument("--gto-timeout", type=float, default=600.0)
    parser.add_argument("--gto-venv", type=Path, default=Path(os.environ.get("GTO_VENV", "/tmp/gto-venv")),
                        help="venv holding gto (env GTO_VENV); created when missing unless --no-install")
    parser.add_argument("--no-install", action="store_true", help="do not create the gto venv when it is missing")
    parser.add_argument("--skip-gto", action="store_true")
    parser.add_argument("--keep", type=Path, help="build the repository here and keep it")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="gitops-ml-bench-"))
    if args.keep and work.exists():
        shutil.rmtree(work)
    start = time.perf_counter()
    build_repo(work, args.models, args.commits)
    print(f"built {work}: {args.models} models, {args.commits} commits, {args.commits} tags in {time.perf_counter() - start:.1f} s", flush=True)

    ours = [sys.executable, "-m", "gitops_ml"]
    timings = [
        time_command("git log (baseline)", ["git", "log", "--format=%H %ct %s", "--", f"models/{args.model}/model.yaml"], work, args.repeat, 60),
        time_command(f"gitops-ml history {args.model}", [*ours, "history", args.model], work, args.repeat, 60),
        time_command(f"gitops-ml history {args.model} --format json", [*ours, "history", args.model, "--format", "json"], work, args.repeat, 60),
        time_command("gitops-ml models", [*ours, "models"], work, args.repeat, 60),
        time_command(f"gitops-ml show {args.model}@1.1.0", [*ours, "show", f"{args.model}@1.1.0"], work, args.repeat, 60),
        time_command("gitops-ml tag --dry-run (all versions)", [*ours, "tag", "--dry-run"], work, args.repeat, 120),
    ]
    gto = None if args.skip_gto else gto_executable(args.gto_venv, not args.no_install)
    if gto is None and not args.skip_gto:
        print(f"gto: not found in {args.gto_venv} (set GTO_VENV or drop --no-install); GTO comparison skipped", file=sys.stderr)
    if gto is not None:
        timings.append(time_command(f"gto history {args.model}", [str(gto), "history", args.model], work, 1, args.gto_timeout))
        timings.append(time_command("gto show", [str(gto), "show"], work, 1, args.gto_timeout))

    by_label = {t.label: t for t in timings}
    print(f"\n{'command':48} {'median s':>9} {'runs':>5}  note")
    for t in timings:
        print(f"{t.label:48} {t.median:9.3f} {len(t.runs):5d}  {t.note or ('ok' if t.returncode == 0 else f'exit {t.returncode}')}")
    ratios = {}
    pairs = [(f"gto history {args.model}", f"gitops-ml history {args.model}"), ("gto show", "gitops-ml models")]
    lower_bounds = set()
    for theirs, mine in pairs:
        if theirs in by_label and mine in by_label and by_label[theirs].returncode in (0, -1):
            name = f"{theirs} / {mine}"
            ratios[name] = by_label[theirs].median / by_label[mine].median
            if by_label[theirs].returncode == -1:  # timed out: the true ratio is higher
                lower_bounds.add(name)
    for name, ratio in ratios.items():
        print(f"ratio {name}: {'at least ' if name in lower_bounds else ''}{ratio:.0f}x")
    targets = {f"gitops-ml history {args.model}": 1.0, "gitops-ml models": 2.0}
    for label, limit in targets.items():
        verdict = "meets" if by_label[label].median < limit else "MISSES"
        print(f"target {label} < {limit:.0f} s: {verdict} ({by_label[label].median:.3f} s)")
    if args.json:
        args.json.write_text(json.dumps({"timings": [asdict(t) | {"median": t.median} for t in timings], "ratios": ratios, "lowerBounds": sorted(lower_bounds)}, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    failed = [t for t in timings if t.returncode != 0 and not t.label.startswith("gto")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

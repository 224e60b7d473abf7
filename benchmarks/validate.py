"""Validate a generated repository of N models x 3 environments (about 5,000 YAML files) with
`gitops-ml validate`, and the same files against the same schemas with check-jsonschema, in one run.

    .venv/bin/python benchmarks/validate.py [--models 1000] [--runs 3]

Prints the median wall time of each (whole processes, start-up included) and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "repo-layout"
ENVIRONMENTS = ("staging", "prod", "canary")


def generate(target: Path, models: int) -> int:
    (target / "models").mkdir(parents=True)
    repo_yaml = (EXAMPLE / "gitops-ml.yaml").read_text()
    repo_yaml = repo_yaml.replace("  prod:\n", "  canary:\n    namespace: ml-canary\n  prod:\n")
    (target / "gitops-ml.yaml").write_text(repo_yaml)
    src = EXAMPLE / "models" / "iris"
    model_yaml = (src / "model.yaml").read_text()
    deployments = {env: (EXAMPLE / "deployments" / ("prod" if env == "prod" else "staging") / "iris.yaml").read_text() for env in ENVIRONMENTS}
    for i in range(models):
        name = f"model-{i:04d}"
        d = target / "models" / name
        d.mkdir()
        for f in src.iterdir():  # every file of the example's model (lock, reference profile, ...)
            if f.is_file() and f.name != "model.yaml":
                shutil.copyfile(f, d / f.name)
        (d / "model.yaml").write_text(model_yaml.replace("name: iris", f"name: {name}"))
        for env in ENVIRONMENTS:
            dep = deployments[env].replace("model: iris", f"model: {name}").replace("iris.", f"{name}.")
            path = target / "deployments" / env / f"{name}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dep)
    return 1 + models * 2 + models * len(ENVIRONMENTS)


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])}... failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bindir = Path(sys.executable).parent
    gitops_ml = str(bindir / "gitops-ml")
    check = str(bindir / "check-jsonschema")
    if not Path(check).exists():
        sys.exit("check-jsonschema is not installed: pip install check-jsonschema")
    schemas = ROOT / "schemas"
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        files = generate(repo, args.models)
        models = sorted(str(p.relative_to(repo)) for p in repo.glob("models/*/model.yaml"))
        manifests = sorted(str(p.relative_to(repo)) for p in repo.glob("models/*/manifest.yaml"))
        deployments = sorted(str(p.relative_to(repo)) for p in repo.glob("deployments/*/*.yaml"))
        check_cmds = [
            [check, "--schemafile", str(schemas / "repository.schema.json"), "gitops-ml.yaml"],
            [check, "--schemafile", str(schemas / "model.schema.json"), *models],
            [check, "--schemafile", str(schemas / "manifest.schema.json"), *manifests],
            [check, "--schemafile", str(schemas / "deployment.schema.json"), *deployments],
        ]
        ours, theirs = [], []
        for _ in range(args.runs):
            ours.append(timed([gitops_ml, "validate", "."], repo))
            theirs.append(sum(timed(cmd, repo) for cmd in check_cmds))
        m_ours, m_theirs = statistics.median(ours), statistics.median(theirs)
        print(f"repository: {args.models} models x {len(ENVIRONMENTS)} environments = {files} YAML files (+{args.models * 4} other files)")
        print(f"gitops-ml validate (schemas + cross-file + sample/schema + artifact sha256): median {m_ours:.2f} s  runs {', '.join(f'{t:.2f}' for t in ours)}")
        print(f"check-jsonschema (schemas only, 4 processes):                        median {m_theirs:.2f} s  runs {', '.join(f'{t:.2f}' for t in theirs)}")
        print(f"ratio: gitops-ml is {m_theirs / m_ours:.1f}x faster")


if __name__ == "__main__":
    main()

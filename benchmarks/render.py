"""Render benchmark: 1,000 models x 3 environments, against `kustomize build` of the same overlays,
`render --check` after a change to one model: the full check (every unit re-rendered, every
file read; what CI runs) and `--incremental` (only units whose inputs changed; trusts the index),
and `render --verify` (build and validate every kustomization) cold, warm, and after a one-model
change, beside `kubectl kustomize` run once per overlay.

    .venv/bin/python benchmarks/render.py [--models 1000] [--kustomize-sample 30 | --kustomize-all] [--no-verify]

Prints figures; there are no thresholds (targets: full render < 5 s, one-model check < 1 s,
verify of 1,000 x 3 < 60 s on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gitops_ml.adapters import kustomize
from gitops_ml.render.service import RenderRequest, render_repository
from gitops_ml.render.verify import BATCH_SIZE, kustomization_dirs, verify_render
from gitops_ml.repo.handle import Repository

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "repo-layout"
ENVIRONMENTS = ("dev", "staging", "prod")


def make_repository(root: Path, models: int) -> None:
    """The example's iris model copied `models` times, deployed to three environments."""
    (root / "models").mkdir(parents=True)
    repo_text = (EXAMPLE / "gitops-ml.yaml").read_text().replace("  staging:\n", "  dev:\n    namespace: ml-dev\n  staging:\n")
    (root / "gitops-ml.yaml").write_text(repo_text)
    deployment = (EXAMPLE / "deployments" / "staging" / "iris.yaml").read_text()
    for env in ENVIRONMENTS:
        (root / "deployments" / env).mkdir(parents=True)
    for i in range(models):
        name = f"model-{i:04d}"
        target = root / "models" / name
        shutil.copytree(EXAMPLE / "models" / "iris", target, ignore=shutil.ignore_patterns("__pycache__"))
        model_yaml = target / "model.yaml"
        model_yaml.write_text(model_yaml.read_text().replace("name: iris", f"name: {name}"))
        for env in ENVIRONMENTS:
            text = deployment.replace("model: iris", f"model: {name}").replace("iris.staging.ml", f"{name}.{env}.ml")
            (root / "deployments" / env / f"{name}.yaml").write_text(text)


def timed(label: str, func):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = func()
    seconds = time.perf_counter() - start
    print(f"{label:<68} {seconds:8.3f} s", flush=True)
    return value, seconds


def check_figures(root: Path, models: int) -> dict[str, float]:
    """`render --check` and friends after a change to one model: seconds by label."""
    # a fresh repository handle per run, as each command line opens its own (it caches validation)
    def full_check() -> RenderRequest:
        return RenderRequest(Repository(root), check=True)

    def quick_check() -> RenderRequest:
        return RenderRequest(Repository(root), check=True, incremental=True)

    result, _ = timed("render --check (nothing changed)", lambda: render_repository(full_check()))
    assert not result.changes.differences
    result, _ = timed("render --check --incremental (nothing changed)", lambda: render_repository(quick_check()))
    assert not result.changes.differences
    score = root / "models" / f"model-{models // 2:04d}" / "score.py"
    score.write_text(score.read_text() + "\n# retrained\n")
    result, check = timed("render --check after a change to one model", lambda: render_repository(full_check()))
    print(f"  {len(result.changes.differences)} stale file(s) found; {result.rendered_units} unit(s) re-rendered, {result.reused_units} reused")
    result, quick = timed("render --check --incremental after a change to one model", lambda: render_repository(quick_check()))
    print(f"  {len(result.changes.differences)} stale file(s) found; {result.rendered_units} unit(s) re-rendered, {result.reused_units} reused")
    _, write = timed("render after a change to one model", lambda: render_repository(RenderRequest(Repository(root))))
    score.write_text(score.read_text() + "# retrained again\n")
    _, quick_write = timed("render --incremental after a change to one model", lambda: render_repository(RenderRequest(Repository(root), incremental=True)))
    score.write_text(score.read_text() + "# retrained once more\n")
    cli = [str(Path(sys.executable).with_name("gitops-ml")), "render", str(root), "--check"]
    proc, process = timed("`gitops-ml render --check` process, one model changed", lambda: subprocess.run(cli, capture_output=True))
    assert proc.returncode == 1, proc.stderr
    proc, quick_process = timed("`gitops-ml render --check --incremental` process, one model changed", lambda: subprocess.run([*cli, "--incremental"], capture_output=True))
    assert proc.returncode == 1, proc.stderr
    render_repository(RenderRequest(Repository(root)))  # leave deploy/ current for the verify figures
    return {
        "render --check (full: the CI gate)": check, "render --check --incremental": quick,
        "`gitops-ml render --check` process": process, "`gitops-ml render --check --incremental` process": quick_process,
        "render (full)": write, "render --incremental": quick_write,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--kustomize-sample", type=int, default=30, help="overlays to build (the rest is extrapolated)")
    parser.add_argument("--kustomize-all", action="store_true", help="build every overlay (minutes)")
    parser.add_argument("--no-verify", action="store_true", help="skip the render --verify figures")
    parser.add_argument("--verify-only", action="store_true", help="skip the render --check figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitops-ml-bench-") as tmp:
        os.environ["GITOPS_ML_CACHE_DIR"] = str(Path(tmp) / "cache")  # the verify cache starts empty, the user's is untouched
        root = Path(tmp) / "repo"
        _, _ = timed(f"generate {args.models} models x {len(ENVIRONMENTS)} environments", lambda: make_repository(root, args.models))
        result, full = timed("render (cold: nothing rendered yet)", lambda: render_repository(RenderRequest(Repository(root))))
        assert result.written is not None
        print(f"  {result.endpoints} endpoints, {len(result.written.written)} files written")
        checks = {} if args.verify_only else check_figures(root, args.models)

        overlays = [d for d in kustomization_dirs(root / "deploy") if d.parent.parent.name == "apps"]
        tool = kustomize.find_kustomize()
        sample = overlays if args.kustomize_all else random.Random(0).sample(overlays, min(args.kustomize_sample, len(overlays)))
        per = []
        for directory in sample:
            start = time.perf_counter()
            kustomize.build(tool, directory)
            per.append(time.perf_counter() - start)
        mean = statistics.mean(per)
        total = mean * len(overlays)
        how = "measured" if args.kustomize_all else f"mean of {len(sample)} x {len(overlays)}"
        print(f"{'kustomize build per overlay (' + str(tool) + ')':<68} {mean * 1000:8.1f} ms")
        print(f"{'kustomize build of all ' + str(len(overlays)) + ' overlays (' + how + ')':<68} {total:8.3f} s")
        print(f"ratio: kustomize build / gitops-ml render = {total / full:.1f}x")
        print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        if checks:
            print(f"summary: render {full:.2f} s (target < 5 s); after a one-model change (target < 1 s):")
            for label, seconds in checks.items():
                print(f"  {label:<56} {seconds:6.2f} s  {'meets' if seconds < 1 else 'misses'} the 1 s target")
        if not args.no_verify:
            verify_figures(root, len(kustomization_dirs(root / "deploy")), total, how, mean)
    return 0


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the Kustomize processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def verify_figures(root: Path, kustomizations: int, per_overlay_total: float, how: str, per_overlay_mean: float) -> None:
    """`render --verify` cold (empty cache), warm, and after a one-model change, beside per-overlay kubectl kustomize."""
    deploy = root / "deploy"
    load = os.getloadavg()[0]
    cpu = cpu_seconds()
    report, cold = timed(f"render --verify, cold: {kustomizations} kustomizations, {BATCH_SIZE} per process, {os.cpu_count()} at once",
                         lambda: verify_render(deploy, "deploy"))
    cold_cpu = cpu_seconds() - cpu
    assert report.ok, report.findings[:5]
    print(f"  {report.objects} objects, {report.validated} valid, {sum(report.unchecked.values())} not checked; "
          f"{cold_cpu:.0f} CPU-s (kustomize + validation); load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
    cpu = cpu_seconds()
    report, warm = timed("render --verify, warm (nothing changed: every kustomization from the cache)", lambda: verify_render(deploy, "deploy"))
    print(f"  {cpu_seconds() - cpu:.1f} CPU-s")
    assert report.cached == kustomizations, report.cached
    model = root / "models" / "model-0001" / "score.py"
    model.write_text(model.read_text() + "# retrained for the verify figure\n")
    render_repository(RenderRequest(Repository(root)))
    cpu = cpu_seconds()
    report, changed = timed("render --verify after a change to one model (its overlays rebuilt)", lambda: verify_render(deploy, "deploy"))
    print(f"  {kustomizations - report.cached} kustomizations built, {report.cached} from the cache; {cpu_seconds() - cpu:.1f} CPU-s")
    overlays = kustomizations - len(list((deploy / "clusters").iterdir()))
    print("verify side by side, one run:")
    print(f"  {'kubectl kustomize once per overlay (' + how + ', no validation)':<66} {per_overlay_total:8.1f} s  ({per_overlay_mean * 1000:.0f} ms x {overlays})")
    print(f"  {'gitops-ml render --verify, cold':<66} {cold:8.1f} s  {per_overlay_total / cold:5.1f}x faster; target < 60 s: {'meets' if cold < 60 else 'misses'}")
    print(f"  {'gitops-ml render --verify, warm':<66} {warm:8.1f} s  {per_overlay_total / warm:5.1f}x faster")
    print(f"  {'gitops-ml render --verify, one model changed':<66} {changed:8.1f} s  {per_overlay_total / changed:5.1f}x faster")
    print(f"  cold run CPU: {cold_cpu:.0f} CPU-s, i.e. at least {cold_cpu / (os.cpu_count() or 1):.0f} s of wall time on {os.cpu_count()} idle cores")


    return 0


if __name__ == "__main__":
    sys.exit(main())

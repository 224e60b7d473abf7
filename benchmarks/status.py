"""Status benchmark: `gitops-ml status` on 1,000 endpoints against the local Kubernetes API server of
the tests, beside the named alternative through the same client: one list call per endpoint and kind.

    .venv/bin/python benchmarks/status.py [--models 500] [--environments 2] [--runs 5] [--alternative-sample 100]

The cluster holds one live Deployment, ReplicaSet, HPA and Argo CD Application per endpoint, made
from this render's own files. Prints wall and CPU time of the `gitops-ml status` process (CPU is
the figure to trust on a shared machine), the split between git's side (the render plan) and the
cluster's, and API call counts. No thresholds (target: under 2 s on 1,000 endpoints).
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# the tests' helpers (tests/render is a namespace package: benchmarks/render.py must not shadow it)
sys.path[:] = [str(ROOT), str(ROOT / "tests"), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks")]

from gitops_ml.adapters import cluster as kube  # noqa: E402
from gitops_ml.adapters import kustomize  # noqa: E402
from gitops_ml.render.service import RenderRequest, render_repository  # noqa: E402
from gitops_ml.repo.handle import Repository  # noqa: E402
from gitops_ml.status.service import StatusRequest, _Session, read_status  # noqa: E402
from tests.status import live  # noqa: E402
from tests.status.conftest import write_kubeconfig  # noqa: E402
from tests.status.kube_server import KubeServer, Running  # noqa: E402

EXAMPLE = ROOT / "examples" / "repo-layout"
ENVIRONMENTS = ("prod", "staging", "dev", "qa")


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_DATE": "1704110400 +0000", "GIT_COMMITTER_DATE": "1704110400 +0000",
           "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True, env=env).stdout


def make_repository(root: Path, models: int, environments: tuple[str, ...]) -> None:
    """The example's iris model copied `models` times, deployed to every environment."""
    (root / "models").mkdir(parents=True)
    envs = "".join(f"  {e}:\n    namespace: ml-{e}\n" for e in environments)
    repo_text = (EXAMPLE / "gitops-ml.yaml").read_text().split("environments:\n")[0] + "environments:\n" + envs
    (root / "gitops-ml.yaml").write_text(repo_text)
    deployment = (EXAMPLE / "deployments" / "staging" / "iris.yaml").read_text()
    for env in environments:
        (root / "deployments" / env).mkdir(parents=True)
    for i in range(models):
        name = f"model-{i:04d}"
        target = root / "models" / name
        shutil.copytree(EXAMPLE / "models" / "iris", target, ignore=shutil.ignore_patterns("__pycache__"))
        model_yaml = target / "model.yaml"
        model_yaml.write_text(model_yaml.read_text().replace("name: iris", f"name: {name}"))
        for env in environments:
            text = deployment.replace("model: iris", f"model: {name}").replace("iris.staging.ml", f"{name}.{env}.ml")
            (root / "deployments" / env / f"{name}.yaml").write_text(text)


def load_cluster(server: KubeServer, root: Path, head: str) -> int:
    """One live Deployment, ReplicaSet, HPA and Application per rendered endpoint; returns the object count."""
    render = root / "deploy"
    first = sorted(p.parent for p in render.glob("apps/*/model-*/kustomization.yaml") if p.parts[-3] != "base")[0]
    shape = {o["kind"]: o for o in kustomize.build(kustomize.find_kustomize(), first)}
    server.serve_crds("Application")
    count = 0
    for patch_path in sorted(render.glob("apps/*/model-*/deployment-patch.yaml")):
        env, model = patch_path.parent.parent.name, patch_path.parent.name
        patch = yaml.safe_load(patch_path.read_text())
        tag = yaml.safe_load((patch_path.parent / "kustomization.yaml").read_text())["images"][0]["newTag"]
        dep = copy.deepcopy(shape["Deployment"])
        meta, template = dep["metadata"], dep["spec"]["template"]
        for labels in (meta["labels"], template["metadata"]["labels"]):
            labels.update({"app.kubernetes.io/name": model, "gitops-ml.dev/environment": env})
        meta.update(name=model, namespace=f"ml-{env}")
        template["metadata"]["labels"].update(patch["spec"]["template"]["metadata"]["labels"])
        template["metadata"]["annotations"].update(patch["spec"]["template"]["metadata"]["annotations"])
        template["spec"]["containers"][0]["image"] = f"registry.example.com/ml/{model}:{tag}"
        dep["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = model
        hpa = copy.deepcopy(shape["HorizontalPodAutoscaler"])
        hpa["metadata"].update(name=model, namespace=f"ml-{env}", labels=dict(meta["labels"]))
        hpa["spec"]["scaleTargetRef"]["name"] = model
        application = yaml.safe_load((render / "clusters" / env / "applications" / f"{model}.yaml").read_text())
        for obj in live.healthy({"Deployment": dep, "HorizontalPodAutoscaler": hpa}, 1):
            server.put(obj)
        server.put(live.application(application, revision=head))
        count += 4
    return count


def per_endpoint_reads(session: _Session, sample: int) -> int:
    """The alternative: every endpoint asks for its own Deployment, ReplicaSets, HPA and Application."""
    calls = 0
    for ep in session.desired.endpoints[:sample]:
        selector = f"{session.desired.selector},app.kubernetes.io/name={ep.model},gitops-ml.dev/environment={ep.environment}"
        for kind, namespace in ((kube.DEPLOYMENTS, ep.namespace), (kube.REPLICASETS, ep.namespace), (kube.HPAS, ep.namespace),
                                (kube.APPLICATIONS, ep.engine.namespace)):
            session.cluster.list(kind, namespace, selector)
            calls += 1
    return calls


# One `gitops-ml status` run in a fresh process, step by step, in CPU seconds: the server runs in the
# parent, so this process's CPU is the client's alone, whatever else loads the machine.
PHASES = """
import sys, time
from pathlib import Path
marks = [("start", time.process_time())]
def mark(label):
    marks.append((label, time.process_time()))
from gitops_ml.cli import status as cli_status
from gitops_ml.status import service
from gitops_ml.status.desired import load_desired
mark("import gitops-ml (cli, status, render plan, validation)")
from gitops_ml.repo.handle import Repository
request = service.StatusRequest(Repository(Path(sys.argv[1])), timeout=60)
desired = load_desired(request.repo)
mark("git's side: validate, resolve versions, plan")
from gitops_ml.adapters import cluster
cluster._kubernetes().client.CustomObjectsApi
mark("import the kubernetes client")
service.load_desired = lambda *a, **k: desired
session = service._Session(request)
mark("connect (kubeconfig)")
session.list_all(session.plan_reads(with_pods=False))
session.check_namespaces()
mark("discovery and lists, JSON parsed")
report = session.report()
mark("compare")
cli_status._lines(report, False)
mark("format the lines")
session.close()
assert report.settled
for (_, before), (label, after) in zip(marks, marks[1:]):
    print(f"{label}\\t{after - before:.3f}")
"""


def timed(label: str, func):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = func()
    seconds = time.perf_counter() - start
    print(f"{label:<72} {seconds:8.3f} s", flush=True)
    return value, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--environments", type=int, default=2, choices=range(1, len(ENVIRONMENTS) + 1))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--alternative-sample", type=int, default=100, help="endpoints the per-endpoint alternative reads (then scaled)")
    args = parser.parse_args()
    environments = ENVIRONMENTS[: args.environments]
    with tempfile.TemporaryDirectory(prefix="gitops-ml-status-bench-") as tmp:
        root = Path(tmp) / "repo"
        timed(f"generate {args.models} models x {len(environments)} environments", lambda: make_repository(root, args.models, environments))
        git(root, "init", "-q", "-b", "main")
        timed("render", lambda: render_repository(RenderRequest(Repository(root))))
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", "models")
        head = git(root, "rev-parse", "HEAD").strip()
        server = KubeServer()
        running = Running(server)
        try:
            objects, _ = timed("load the API server (kustomize build of one overlay, then one per endpoint)", lambda: load_cluster(server, root, head))
            config = write_kubeconfig(Path(tmp) / "kubeconfig", server.url)
            os.environ["KUBECONFIG"] = str(config)
            print(f"  {objects} objects for {objects // 4} endpoints")

            cli = [str(Path(sys.executable).with_name("gitops-ml")), "status", str(root)]
            walls, cpus, calls = [], [], 0
            for _ in range(args.runs):
                before = len(server.seen)
                used = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                proc = subprocess.run(cli, capture_output=True, text=True)
                walls.append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpus.append(after.ru_utime - used.ru_utime + after.ru_stime - used.ru_stime)
                assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
                calls = len(server.seen) - before
            summary = proc.stdout.splitlines()[-1]
            wall, cpu = statistics.median(walls), statistics.median(cpus)
            print(f"{'`gitops-ml status` process, wall (median of ' + str(args.runs) + ')':<72} {wall:8.3f} s")
            print(f"{'`gitops-ml status` process, CPU user+sys (median of ' + str(args.runs) + ')':<72} {cpu:8.3f} s")
            print(f"  {summary}; {calls} API call(s) seen by the server")

            child = subprocess.run([sys.executable, "-c", PHASES, str(root)], capture_output=True, text=True, check=True)
            steps = [line.split("\t") for line in child.stdout.splitlines()]
            print("one run in a fresh process, CPU by step:")
            for label, seconds in steps:
                print(f"  {label:<70} {float(seconds):8.3f} s")
            git_side = sum(float(v) for label, v in steps if label.startswith(("import gitops-ml", "git's side")))
            cluster_side = sum(float(v) for label, v in steps) - git_side
            print(f"  {'git side (imports and plan) / cluster side (client, lists, compare)':<70} {git_side:5.2f} / {cluster_side:.2f} s")
            request = StatusRequest(Repository(root), timeout=60)
            report = read_status(request)
            assert report.settled
            code = "import kubernetes.client, kubernetes.config; kubernetes.client.CustomObjectsApi"
            used = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, "-c", code], check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            print(f"{'importing the kubernetes client in a fresh process, CPU':<72} {after.ru_utime - used.ru_utime + after.ru_stime - used.ru_stime:8.3f} s")

            session = _Session(request)
            try:
                before = session.cluster.calls
                reads = session.plan_reads(with_pods=False)
                _, ours = timed(f"cluster reads: one list per namespace and kind ({len(reads)} lists)", lambda: session.list_all(reads))
                ours_calls = session.cluster.calls - before
                sample = min(args.alternative_sample, len(session.desired.endpoints))
                before = session.cluster.calls
                _, alt_sample = timed(f"alternative: one list per endpoint and kind ({sample} endpoints)", lambda: per_endpoint_reads(session, sample))
                scale = len(session.desired.endpoints) / sample
                alt, alt_calls = alt_sample * scale, round((session.cluster.calls - before) * scale)
            finally:
                session.close()
            print(f"{'  the alternative scaled to every endpoint':<72} {alt:8.3f} s")
            print(f"  API calls: {ours_calls} (ours) vs {alt_calls} (per endpoint); read time ratio {alt / ours:.0f}x")
        finally:
            running.close()
        print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"summary: `gitops-ml status` on {len(report.endpoints)} endpoints ({args.models} models x {len(environments)} environments): "
              f"{wall:.2f} s wall, {cpu:.2f} s CPU ({'meets' if cpu < 2 else 'misses'} the 2 s target on CPU), {calls} API calls, "
              f"git's side {git_side:.2f} s CPU, the cluster's {cluster_side:.2f} s; one list per endpoint would take {alt_calls} calls and {alt / ours:.0f}x the read time")
    return 0


if __name__ == "__main__":
    sys.exit(main())

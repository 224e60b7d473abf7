"""`gitops-ml status`: what runs where, read from the cluster, against what git declares.

One line per endpoint (a mark, git's version, the running version(s), replicas, autoscaler, engine
and verdict), the reasons under any endpoint that is not settled, and exit 1 unless all are.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from gitops_ml.cli._common import handle_errors, print_json, repository_options, require_repository
from gitops_ml.errors import CheckFailed
from gitops_ml.repo.handle import Repository
from gitops_ml.status.model import EndpointStatus, Relation, Severity, StatusReport, Verdict

MARKS = {
    Verdict.OK: " ",
    Verdict.WARNING: "!",
    Verdict.PROGRESSING: "~",
    Verdict.OUT_OF_SYNC: "*",
    Verdict.MISSING: "-",
    Verdict.EXTRA: "+",
    Verdict.FAILED: "x",
}
COLORS = {"!": "yellow", "~": "cyan", "*": "yellow", "-": "red", "+": "magenta", "x": "red"}
HEADINGS = ("ENDPOINT", "GIT", "RUNNING", "READY", "SCALE", "ENGINE", "STATUS")
RELATIONS = {
    Relation.BEHIND: "behind HEAD",
    Relation.AHEAD: "ahead of HEAD",
    Relation.DIVERGED: "not in HEAD's history",
    Relation.UNKNOWN: "not in this clone",
}
DEFAULT_TIMEOUT = 30.0
DEFAULT_WATCH_TIMEOUT = 300.0


@dataclass(frozen=True)
class StatusOptions:
    repo: Repository
    environments: tuple[str, ...]
    models: tuple[str, ...]
    fmt: str
    watch: bool
    timeout: float | None
    context: str | None
    kubeconfig: Path | None
    print_rbac: bool


def _short(commit: str | None) -> str:
    return commit[:7] if commit else "-"


def _running(e: EndpointStatus) -> str:
    if not e.running:
        return "-"
    if len(e.running) == 1 and e.running[0].role == "stable":
        return e.running[0].version or "?"
    parts = []
    for r in e.running:
        tag = f" {r.role}"
        weight = f" {e.canary_weight}%" if r.role == "canary" and e.canary_weight is not None else ""
        parts.append(f"{r.version or '?'}x{r.replicas}{tag}{weight}")
    return ", ".join(parts)


def _git(e: EndpointStatus) -> str:
    if e.desired is None:
        return "-"
    text = str(e.desired.stable.version)
    if e.desired.canary is not None:
        text += f" +canary {e.desired.canary.version}" + (f" {e.desired.canary_weight}%" if e.desired.canary_weight is not None else "")
    return text


def _ready(e: EndpointStatus) -> str:
    w = e.workload
    if w is None:
        return "-"
    want = w.spec_replicas if w.spec_replicas is not None else w.replicas
    return f"{w.ready}/{want}"


def _scale(e: EndpointStatus) -> str:
    s = e.scaling
    if s is None:
        return "-"
    if s.kind == "fixed":
        return f"fixed {s.desired}"
    limits = f" [{s.min_replicas}-{s.max_replicas}]" if s.max_replicas is not None else ""
    at_max = " max" if s.max_replicas is not None and s.desired >= s.max_replicas else ""
    return f"{s.kind} {s.current}->{s.desired}{limits}{at_max}"


def _engine(e: EndpointStatus) -> str:
    g = e.engine
    if g is None:
        return "-"
    if g.kind == "Application":
        state = f"{g.sync or 'Unknown'}/{g.health or 'Unknown'}"
    else:
        state = "Ready" if g.ready is not None and g.ready.status == "True" else (
            f"Ready={g.ready.status}" if g.ready is not None else "not reconciled"
        )
    if g.suspended:
        state += " (manual)" if g.kind == "Application" else " (suspended)"
    at = f" @{_short(g.revision)}" if g.revision else ""
    if e.engine_relation is not None and e.engine_relation is not Relation.HEAD:
        at += f" ({RELATIONS[e.engine_relation]})"
    return state + at


def _row(e: EndpointStatus) -> tuple[str, ...]:
    return (f"{e.environment}/{e.model}", _git(e), _running(e), _ready(e), _scale(e), _engine(e), e.verdict.value)


def _table(report: StatusReport, color: bool) -> tuple[str, list[tuple[tuple[str, str], list[str]]]]:
    """The heading line, then per endpoint its line (columns as wide as their widest cell) and reasons."""
    rows = [HEADINGS, *(_row(e) for e in report.endpoints)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADINGS))]

    def line(mark: str, row: tuple[str, ...]) -> str:
        text = "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
        styled = click.style(mark, fg=COLORS[mark], bold=True) if color and mark in COLORS else mark
        return f"{styled} {text}"

    blocks = [(e.key, [line(MARKS[e.verdict], row), *_details(e)]) for e, row in zip(report.endpoints, rows[1:])]
    return line(" ", HEADINGS), blocks


def _lines(report: StatusReport, color: bool) -> list[str]:
    heading, blocks = _table(report, color)
    return [heading, *(text for _, block in blocks for text in block)]


def _details(e: EndpointStatus) -> list[str]:
    if e.verdict is Verdict.OK:
        return []
    return [f"    {m.message}" for m in e.marks if m.severity >= Severity.WARNING]


def _summary(report: StatusReport) -> str:
    counts = report.counts
    parts = [f"{counts[v]} {v.value}" for v in Verdict if counts.get(v)]
    return f"{len(report.endpoints)} endpoint(s): {', '.join(parts) or 'none'} ({report.calls} API call(s))"


def _header(report: StatusReport) -> str:
    return f"cluster {report.server} ({report.identity}); git HEAD {_short(report.head)}"


def _version_json(v: Any) -> dict[str, Any] | None:
    if v is None:
        return None
    return {"version": str(v.version), "imageTag": v.image_tag, "revision": v.revision, "commit": v.commit}


def endpoint_json(e: EndpointStatus) -> dict[str, Any]:
    d, w, s, g = e.desired, e.workload, e.scaling, e.engine
    return {
        "environment": e.environment,
        "model": e.model,
        "namespace": e.namespace,
        "verdict": e.verdict.value,
        "marks": [{"code": m.code.value, "severity": m.severity.name.lower(), "message": m.message} for m in e.marks],
        "git": None if d is None else {
            "source": d.source_path,
            "stable": _version_json(d.stable),
            "canary": _version_json(d.canary),
            "canaryWeight": d.canary_weight,
            "shadow": _version_json(d.shadow),
            "replicas": d.replicas,
            "autoscaling": None if d.autoscaling is None else {"min": d.autoscaling.min_replicas, "max": d.autoscaling.max_replicas},
        },
        "workload": None if w is None else {
            "kind": w.kind, "name": w.name, "version": w.template.version, "imageTag": w.template.image_tag,
            "image": w.template.image, "revision": w.template.revision,
            "replicas": {"desired": w.spec_replicas, "current": w.replicas, "updated": w.updated, "ready": w.ready, "available": w.available},
            "conditions": [{"type": c.type, "status": c.status, "reason": c.reason, "message": c.message} for c in w.conditions],
            "rollout": None if w.rollout is None else {
                "phase": w.rollout.phase, "canaryWeight": w.rollout.canary_weight, "step": w.rollout.step, "steps": w.rollout.steps,
                "message": w.rollout.message,
            },
        },
        "running": [{"version": r.version, "imageTag": r.image_tag, "replicas": r.replicas, "ready": r.ready, "role": r.role} for r in e.running],
        "scaling": None if s is None else {"kind": s.kind, "current": s.current, "desired": s.desired, "min": s.min_replicas, "max": s.max_replicas},
        "engine": None if g is None else {
            "kind": g.kind, "namespace": g.namespace, "name": g.name, "sync": g.sync, "health": g.health,
            "ready": None if g.ready is None else {"status": g.ready.status, "reason": g.ready.reason, "message": g.ready.message},
            "revision": g.revision, "relationToHead": e.engine_relation.value if e.engine_relation else None,
            "message": g.message, "suspended": g.suspended,
        },
    }


def report_json(report: StatusReport) -> dict[str, Any]:
    return {
        "ok": report.settled,
        "timedOut": report.timed_out,
        "server": report.server,
        "identity": report.identity,
        "head": report.head,
        "apiCalls": report.calls,
        "counts": {v.value: n for v, n in sorted(report.counts.items(), key=lambda kv: kv[0].value)},
        "endpoints": [endpoint_json(e) for e in report.endpoints],
    }


def _print_rbac(options: StatusOptions) -> None:
    from gitops_ml.render.emit import to_yaml  # noqa: PLC0415
    from gitops_ml.status.desired import load_desired  # noqa: PLC0415
    from gitops_ml.status.rbac import HEADER, rbac_objects  # noqa: PLC0415

    desired = load_desired(options.repo, options.environments)
    documents = [to_yaml(obj, HEADER if i == 0 else "").decode() for i, obj in enumerate(rbac_objects(desired))]
    click.echo("---\n".join(documents), nl=False)


def execute(options: StatusOptions) -> None:
    if options.print_rbac:
        _print_rbac(options)
        return
    from gitops_ml.adapters.cluster import ClusterSettings  # noqa: PLC0415 - keeps --help light
    from gitops_ml.status.service import StatusRequest, read_status, watch_status  # noqa: PLC0415

    timeout = options.timeout if options.timeout is not None else (DEFAULT_WATCH_TIMEOUT if options.watch else DEFAULT_TIMEOUT)
    settings = ClusterSettings(context=options.context, kubeconfig=options.kubeconfig, request_timeout=min(DEFAULT_TIMEOUT, timeout))
    request = StatusRequest(options.repo, options.environments, options.models, settings, timeout)
    color = options.fmt == "text" and sys.stdout.isatty()
    if not options.watch:
        report = read_status(request)
        if options.fmt == "json":
            print_json(report_json(report))
        else:
            click.echo(_header(report))
            for line in _lines(report, color):
                click.echo(line)
            click.echo(_summary(report))
    else:
        started = time.monotonic()
        shown: dict[tuple[str, str], tuple[tuple[str, ...], list[str]]] = {}
        printed: list[bool] = []

        def on_report(report: StatusReport) -> None:
            if options.fmt == "json":
                return
            current = {e.key: (_row(e), _details(e)) for e in report.endpoints}
            if not printed:
                click.echo(_header(report))
                for line in _lines(report, color):
                    click.echo(line)
                printed.append(True)
            else:
                # from then on, only the endpoints that changed, with the time since the start
                _, blocks = _table(report, color)
                for key, block in blocks:
                    if shown.get(key) != current[key]:
                        click.echo(f"[{time.monotonic() - started:5.1f}s] {block[0]}")
                        for line in block[1:]:
                            click.echo(line)
            shown.clear()
            shown.update(current)

        report = watch_status(request, on_report)
        if options.fmt == "json":
            print_json(report_json(report))
        else:
            click.echo(_summary(report))
    if report.timed_out:
        raise CheckFailed(
            f"gave up after {timeout:g} s: {sum(1 for e in report.endpoints if not e.verdict.settled)} endpoint(s) did not settle",
            hint="see the reasons above; --timeout waits longer",
        )
    if not report.settled:
        raise CheckFailed(f"{sum(1 for e in report.endpoints if not e.verdict.settled)} endpoint(s) not in sync or not healthy")


@click.command("status")
@repository_options(positional=True)
@click.option("--env", "environments", multiple=True, metavar="ENV", help="Only this environment (repeatable).")
@click.option("--model", "models", multiple=True, metavar="MODEL", help="Only this model (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format.")
@click.option("--watch", is_flag=True, help="Follow the cluster (Kubernetes watch API) until every endpoint settles or --timeout passes.")
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
    help=f"With --watch: how long to wait for every endpoint to settle (default {DEFAULT_WATCH_TIMEOUT:g}); "
    f"otherwise: how long to wait for the cluster's answers (default {DEFAULT_TIMEOUT:g}).",
)
@click.option("--context", default=None, metavar="NAME", help="kubeconfig context to use (default: its current context), as kubectl --context.")
@click.option(
    "--kubeconfig", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
    help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else the pod's service account in a cluster).",
)
@click.option("--print-rbac", is_flag=True, help="Print a read-only ClusterRole and RoleBindings that status needs, and exit.")
def command(
    repo: Repository, environments: tuple[str, ...], models: tuple[str, ...], fmt: str,
    watch: bool, timeout: float | None, context: str | None, kubeconfig: Path | None, print_rbac: bool,
) -> None:
    """Show what runs where: for every endpoint of REPO (default: .), the version git declares against
    the versions the cluster runs, replicas, autoscaler, and the GitOps engine's sync (Argo CD or Flux)
    against git HEAD. Marks: x failed, * out of sync, ~ progressing, - missing from the cluster,
    + in the cluster but not in git, ! warning.

    Exits 0 when every endpoint is in sync and healthy, 1 otherwise (usable in CI after a merge,
    with --watch to wait for the rollout). Needs the Kubernetes client: pip install 'gitops-ml[kubernetes]'.
    """
    with handle_errors():
        require_repository(repo)
        execute(StatusOptions(repo, environments, models, fmt, watch, timeout, context, kubeconfig, print_rbac))

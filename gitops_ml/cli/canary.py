"""`gitops-ml canary status MODEL --env ENV --prometheus URL`: the canary's analysis, now.

Exit codes: 0 every criterion passes, 1 one fails, 7 no data yet (the candidate answered nothing in
the window, or a measure has no sample), 5 Prometheus unreachable or refusing, 2 usage.
"""

from __future__ import annotations

from typing import Any

import click

from gitops_ml.cli._common import handle_errors, print_json, repository_options
from gitops_ml.errors import UsageError
from gitops_ml.repo.handle import Repository
from gitops_ml.rollout.status import CanaryStatus, CanaryStatusRequest, Reading, Verdict, canary_status

EXIT = {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.NO_DATA: 7}
PROMETHEUS_ENV = "GITOPS_ML_PROMETHEUS_URL"


@click.group("canary")
def command() -> None:
    """Live evidence about a canary (rollout.canary of a deployment file)."""


@command.command("status")
@click.argument("model", required=False, default="")
@click.option("--env", "env", metavar="ENV", help="Environment whose deployment file declares the canary.")
@click.option("--all", "every", is_flag=True, help="Every canary the repository declares (no MODEL, no --env).")
@click.option("--base", metavar="REF", help="With --all: also the canaries at REF that the working tree promotes (a promotion pull request).")
@click.option("--prometheus", metavar="URL", envvar=PROMETHEUS_ENV, help=f"Prometheus that scrapes the endpoint (or ${PROMETHEUS_ENV}).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True, help="Seconds to wait for each Prometheus answer.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format.")
@repository_options()
def status(model: str, env: str | None, every: bool, base: str | None, prometheus: str | None, timeout: float, fmt: str, repo: Repository) -> None:
    """Run the queries the rendered AnalysisTemplate runs (error ratio, p99 latency, prediction shift
    over the analysis window), candidate beside stable. Exits 0 pass, 1 fail, 7 no data yet, 5 when
    Prometheus cannot be asked; with --all, the worst of them (fail, then no data)."""
    with handle_errors():
        if every and (model or env):
            raise UsageError("--all takes no MODEL and no --env")
        if not every and not (model and env):
            raise UsageError("name MODEL and --env ENV, or pass --all")
        if base and not every:
            raise UsageError("--base goes with --all")
        if not prometheus:
            raise UsageError("no Prometheus address", hint=f"pass --prometheus URL or set ${PROMETHEUS_ENV}")
        results = canary_status(CanaryStatusRequest(repo, model, env or "", prometheus, timeout, every, base or ""))
        if fmt == "json":
            print_json([_json(r) for r in results] if every else _json(results[0]))
        else:
            if every and not results:
                click.echo("no canary is declared")
            for n, result in enumerate(results):
                if n:
                    click.echo()
                _text(result)
    verdicts = {r.verdict for r in results}
    worst = Verdict.FAIL if Verdict.FAIL in verdicts else (Verdict.NO_DATA if Verdict.NO_DATA in verdicts else Verdict.PASS)
    click.get_current_context().exit(EXIT[worst])


def _value(reading_unit: str, value: float | None) -> str:
    if value is None:
        return "no data"
    if reading_unit == "ratio":
        return f"{value * 100:.2f} %"
    if reading_unit == "seconds":
        return f"{value * 1000:.1f} ms"
    return f"{value:.3f}"


def _limit(reading: Reading) -> str:
    return "<= " + _value(reading.criterion.unit, reading.criterion.limit)


def _text(result: CanaryStatus) -> None:
    c = result.comparison
    click.echo(f"canary of {c.model} in {c.environment} ({result.source_path}): candidate {c.candidate} at {result.weight} % "
               f"vs stable {c.stable}, over the last {c.analysis.window} (Prometheus {result.prometheus})")
    rows = [("", f"stable {c.stable}", f"candidate {c.candidate}", "limit", "verdict")]

    def count(value: float | None) -> str:
        return "no data" if value is None else f"{value:,.0f}"

    rows.append(("requests", count(result.stable_requests), count(result.candidate_requests), "", ""))
    for reading in result.readings:
        unit = reading.criterion.unit
        stable = _value(unit, reading.stable) if reading.criterion.stable_query else "-"
        rows.append((reading.criterion.title, stable, _value(unit, reading.candidate), _limit(reading), reading.verdict.value))
    if c.output_kind is None:
        rows.append(("prediction shift", "-", "-", "", "skipped: output not declared by both versions"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    verdict = result.verdict
    why = {
        Verdict.PASS: "every criterion is within its limit",
        Verdict.FAIL: "failed: " + ", ".join(r.criterion.title for r in result.readings if r.verdict is Verdict.FAIL),
        Verdict.NO_DATA: "no data yet: the candidate has answered no request in the window" if not result.candidate_requests
        else "no data yet for: " + ", ".join(r.criterion.title for r in result.readings if r.verdict is Verdict.NO_DATA),
    }[verdict]
    click.echo(f"verdict: {verdict.value} ({why})")


def _json(result: CanaryStatus) -> dict[str, Any]:
    c = result.comparison
    return {
        "model": c.model,
        "environment": c.environment,
        "stable": str(c.stable),
        "candidate": str(c.candidate),
        "weight": result.weight,
        "window": c.analysis.window,
        "prometheus": result.prometheus,
        "requests": {"stable": result.stable_requests, "candidate": result.candidate_requests},
        "criteria": [
            {
                "name": r.criterion.measure.value,
                "limit": r.criterion.limit,
                "candidate": r.candidate,
                "stable": r.stable,
                "verdict": r.verdict.value,
                "query": r.criterion.query,
                "stableQuery": r.criterion.stable_query,
            }
            for r in result.readings
        ],
        "verdict": result.verdict.value,
    }

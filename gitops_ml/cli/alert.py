"""`gitops-ml alert`: `monitor` for every endpoint; with --issues a crossed threshold becomes one
GitHub issue per model and environment (opened, then updated), with --dispatch a run of the
retraining workflow that cites those issues. What the scheduled monitor workflow runs."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import click

from gitops_ml.cli._common import echo_err, handle_errors, in_ci, print_json, repository_options, require_repository
from gitops_ml.cli.monitor import _require
from gitops_ml.repo.handle import Repository


def _run_url() -> str:
    server, repository, run = (
        os.environ.get(k, "").strip() for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    )
    return f"{server}/{repository}/actions/runs/{run}" if server and repository and run else ""


@click.command("alert")
@repository_options()
@click.option(
    "--model", "-m", "models", multiple=True, metavar="MODEL", help="Only this model (repeatable; default every model)."
)
@click.option(
    "--env",
    "-e",
    "environments",
    multiple=True,
    metavar="ENV",
    help="Only this environment (repeatable; default every environment).",
)
@click.option(
    "--capture",
    default="",
    metavar="DIR|URI",
    help="One capture root for every endpoint (a directory or s3://BUCKET/PREFIX). Default: each deployment file's sink.",
)
@click.option(
    "--since",
    default="",
    metavar="WHEN",
    help="Start of the window: 30m, 24h, 7d, or an ISO date or date-time (default: 24h ago).",
)
@click.option("--until", default="", metavar="WHEN", help="End of the window (default: now).")
@click.option(
    "--issues",
    is_flag=True,
    help="Open (or update) one GitHub issue per model and environment whose threshold is crossed; needs GITHUB_TOKEN.",
)
@click.option(
    "--dispatch",
    "dispatch",
    default="",
    metavar="WORKFLOW",
    help="Dispatch this retraining workflow (e.g. gitops-ml-retrain.yml) for each model with a new crossing, citing its issues; needs --issues.",
)
@click.option(
    "--ref", default="", metavar="BRANCH", help="Branch the retraining runs on (default: $GITHUB_REF_NAME, else main)."
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format."
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where objects read from a store are kept (default: ~/.cache/gitops-ml/captures).",
)
def command(
    repo: Repository,
    models: tuple[str, ...],
    environments: tuple[str, ...],
    capture: str,
    since: str,
    until: str,
    issues: bool,
    dispatch: str,
    ref: str,
    fmt: str,
    cache_dir: Path | None,
) -> None:
    """Run `monitor` for every endpoint (each deployment file) and report what crossed a threshold
    of its `monitoring:`. With --issues, each crossing opens a GitHub issue with the markdown report,
    or updates the one already open for that model and environment; with --dispatch, a model with a
    new crossing (a new issue, or a version not retrained for yet) gets a run of the retraining
    workflow whose pull request carries the issues as evidence.

    Endpoints without a capture sink or a reference profile are skipped and said so. Exits 0 when
    nothing crossed or every crossing was filed, 1 when a crossing was only printed or an endpoint
    could not be monitored.
    """
    with handle_errors():
        require_repository(repo)
        _require(False)
        from gitops_ml.monitor.alerts import AlertRequest, run_alerts  # noqa: PLC0415
        from gitops_ml.monitor.service import parse_moment  # noqa: PLC0415

        if dispatch and not issues:
            raise click.UsageError("--dispatch cites the issues that --issues files: give --issues too")
        if dispatch and ("/" in dispatch or not dispatch.endswith((".yml", ".yaml"))):
            raise click.UsageError(
                f"--dispatch {dispatch}: the workflow's file name in .github/workflows, e.g. gitops-ml-retrain.yml"
            )
        now = datetime.now(timezone.utc)
        request = AlertRequest(
            repo,
            models,
            environments,
            capture,
            parse_moment(since, now) if since else None,
            parse_moment(until, now) if until else None,
            cache_dir,
            now,
            dispatch,
            ref or os.environ.get("GITHUB_REF_NAME", "").strip() or "main",
            _run_url(),
        )
        client = None
        if issues:
            from gitops_ml.adapters.github import GitHubClient, settings_from_env  # noqa: PLC0415
            from gitops_ml.adapters.gitwrite import GitWriter  # noqa: PLC0415
            from gitops_ml.errors import GitopsMlError  # noqa: PLC0415

            try:
                origin = GitWriter(repo.checkout()).remote_url()
            except GitopsMlError:
                origin = None
            settings = settings_from_env(os.environ, origin)
            client = lambda: GitHubClient(settings)  # noqa: E731 - made only when something is filed
        result = run_alerts(request, client, progress=None if fmt == "json" or in_ci() else echo_err)
        if fmt == "json":
            print_json(
                {
                    "ok": result.exit_code == 0,
                    "exitCode": result.exit_code,
                    "endpoints": [
                        {
                            "model": e.model,
                            "environment": e.environment,
                            "version": e.report.version if e.report else None,
                            "status": e.outcome.value,
                            "summary": e.summary,
                            "issue": {"number": e.issue.number, "url": e.issue.url, "created": e.issue_created}
                            if e.issue
                            else None,
                            "retrain": e.retrain,
                        }
                        for e in result.endpoints
                    ],
                    "dispatches": [
                        {"model": d.model, "workflow": d.workflow, "evidence": list(d.evidence)}
                        for d in result.dispatches
                    ],
                }
            )
        else:
            for e in result.endpoints:
                version = f" {e.report.version}" if e.report else ""
                # a report's headline starts with its status already
                click.echo(
                    f"{e.model}{version} in {e.environment}: "
                    + (e.summary if e.report else f"{e.outcome.value}: {e.summary}")
                )
                if e.issue is not None:
                    click.echo(f"  {'opened' if e.issue_created else 'updated'} issue #{e.issue.number} {e.issue.url}")
            for d in result.dispatches:
                click.echo(f"dispatched {d.workflow} for {d.model} (evidence {', '.join(f'#{n}' for n in d.evidence)})")
            if not result.endpoints:
                click.echo("no endpoint selected")
        click.get_current_context().exit(result.exit_code)

"""`gitops-ml monitor M --env E`: drift and request quality of captured records against the running
version's reference profile. Exit 0 within thresholds, 1 when one is crossed, 7 when there is no data."""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime, timezone
from pathlib import Path

import click

from gitops_ml.cli._common import echo_err, handle_errors, in_ci, print_json, repository_options, require_repository
from gitops_ml.errors import ConfigError
from gitops_ml.repo.handle import Repository

NEEDED = {"duckdb": "duckdb", "scipy": "scipy"}


def _require(html: bool) -> None:
    wanted = dict(NEEDED, **({"matplotlib": "matplotlib"} if html else {}))
    missing = [package for module, package in wanted.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise ConfigError(f"monitor needs {', '.join(missing)}, not installed here", hint="pip install 'gitops-ml[monitor]'")


def _table(report: object) -> None:
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from gitops_ml.monitor.formats import window_text  # noqa: PLC0415
    from gitops_ml.monitor.report import MonitorReport  # noqa: PLC0415

    assert isinstance(report, MonitorReport)
    # not a terminal (CI logs, a pipe): wide enough that no name is cut
    console = Console(soft_wrap=False, highlight=False, no_color=in_ci(), width=None if sys.stdout.isatty() else 160)
    r = report.records
    console.print(f"{report.model} {report.version} in {report.environment}: {report.status.value}", markup=False)
    console.print(f"window {window_text(report)}; {r.total} record(s): {r.scored} scored, {r.refused} refused, {r.errors} server error(s); source {report.source}", markup=False)
    for title, group in (("features", report.features), ("predictions", report.predictions)):
        if not group:
            continue
        table = Table(title=title, title_justify="left")
        for column in ("name", "type", "PSI", "test", "statistic", "p-value", "n", ""):
            table.add_column(column, justify="right" if column in ("PSI", "statistic", "p-value", "n") else "left")
        for f in sorted(group, key=lambda f: (not f.drifted, -f.psi, f.name)):
            table.add_row(
                f.name, f.kind, f"{f.psi:.3f}", f.test or "-", f"{f.statistic:.3g}" if f.test else "-", f"{f.p_value:.2g}" if f.test else "-",
                str(f.production_count), "[bold red]drifted[/]" if f.drifted else "ok",
            )
        console.print(table)
    if report.checks:
        table = Table(title="checks", title_justify="left")
        for column in ("check", "measured", "threshold", ""):
            table.add_column(column)
        for c in report.checks:
            table.add_row(c.name, c.summary, f"{c.threshold:g}", "[bold red]crossed[/]" if c.crossed else "ok")
        console.print(table)
    for note in report.notes:
        echo_err(f"note: {note}")
    console.print(report.headline, markup=False)


@click.command("monitor")
@click.argument("model")
@click.option("--env", "environment", required=True, help="Environment whose running version, thresholds and capture sink are used.")
@repository_options()
@click.option("--capture", default="", metavar="DIR|URI", help="Captured records: a directory (`gitops-ml serve` capture) or s3://BUCKET/PREFIX. Default: the deployment file's sink.")
@click.option("--since", default="", metavar="WHEN", help="Start of the window: 30m, 24h, 7d, or an ISO date or date-time (default: 24h ago).")
@click.option("--until", default="", metavar="WHEN", help="End of the window (default: now).")
@click.option("--version", "version", default="", help="Compare this version's records and profile instead of the one the environment runs.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True, help="Output format (markdown: for an issue or a pull request).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), help="Also write a self-contained HTML report with a histogram per drifted feature.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), help="Where objects read from a store are kept (default: ~/.cache/gitops-ml/captures).")
def command(
    model: str, environment: str, repo: Repository, capture: str, since: str, until: str, version: str, fmt: str, html_file: Path | None, cache_dir: Path | None,
) -> None:
    """Compare MODEL's captured requests in --env with its reference profile: per-feature drift (PSI,
    KS or chi-square), the shift of predictions, the share of requests refused by the input schema,
    server errors and latency. Exit 1 when a threshold of the deployment file's `monitoring:` is
    crossed, 7 when the window holds too few records to judge."""
    with handle_errors():
        require_repository(repo)
        _require(html_file is not None)
        from gitops_ml.monitor.service import MonitorRequest, parse_moment, run_monitor  # noqa: PLC0415

        now = datetime.now(timezone.utc)
        request = MonitorRequest(
            repo, model, environment, capture, parse_moment(since, now) if since else None, parse_moment(until, now) if until else None,
            version, cache_dir, now,
        )
        report = run_monitor(request, progress=None if fmt != "text" else lambda line: echo_err(line))
        if fmt == "json":
            from gitops_ml.monitor.formats import report_data  # noqa: PLC0415

            print_json(report_data(report))
        elif fmt == "markdown":
            from gitops_ml.monitor.formats import to_markdown  # noqa: PLC0415

            click.echo(to_markdown(report), nl=False)
        else:
            _table(report)
        if html_file is not None:
            from gitops_ml.atomic import write_atomic  # noqa: PLC0415
            from gitops_ml.monitor.html import to_html  # noqa: PLC0415

            try:
                write_atomic(html_file, to_html(report))
            except OSError as exc:
                raise ConfigError(f"cannot write {html_file}: {exc.strerror or exc}") from exc
            echo_err(f"wrote {html_file}")
        click.get_current_context().exit(report.exit_code)

"""`alert`: `monitor` for every endpoint, and what a crossed threshold turns into on GitHub: one
issue per (model, environment), opened or updated with the markdown report, and a dispatch of the
retraining workflow with the issues as its evidence. Nothing here prints.

Retraining is dispatched when the issue is opened, and again only when the version the endpoint
runs is not the one already retrained for (a newer version drifts too): a scheduled run that finds
the same drift every hour updates the issue instead of retraining every hour. Closing the issue
says it is handled; the next crossing opens a new one and retrains again.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Callable

from gitops_ml.adapters.github import GitHubClient, Issue
from gitops_ml.errors import GitopsMlError, UsageError
from gitops_ml.monitor.formats import to_markdown
from gitops_ml.monitor.report import MonitorReport, Status
from gitops_ml.monitor.service import MonitorRequest, Progress, run_monitor
from gitops_ml.repo.handle import Repository
from gitops_ml.validate.rules import require_specs

LABEL = "gitops-ml-monitor"
RETRAIN_WORKFLOW = "gitops-ml-retrain.yml"
_RETRAINED = re.compile(r"^<!-- gitops-ml:retrained-for (\S+) -->$", re.MULTILINE)


def issue_marker(model: str, environment: str) -> str:
    """The hidden first line that names an issue's endpoint (HTML comments do not show on GitHub)."""
    return f"<!-- gitops-ml:monitor {model}/{environment} -->"


class Outcome(str, Enum):
    OK = "ok"
    CROSSED = "threshold crossed"
    NO_DATA = "no data"
    SKIPPED = "skipped"  # not set up for monitoring: no capture sink, no reference profile
    FAILED = "failed"  # set up, but monitor could not run (credentials, an unreadable profile)


@dataclass
class EndpointAlert:
    model: str
    environment: str
    outcome: Outcome
    summary: str  # the report's headline, or why the endpoint was skipped or failed
    report: MonitorReport | None = None
    issue: Issue | None = None
    issue_created: bool = False
    retrain: bool = False  # its issue is evidence for a dispatched retraining


@dataclass(frozen=True)
class Dispatch:
    model: str
    workflow: str
    evidence: tuple[int, ...]  # issue numbers


@dataclass
class AlertResult:
    endpoints: list[EndpointAlert] = field(default_factory=list)
    dispatches: list[Dispatch] = field(default_factory=list)
    filed: bool = False  # issues were asked for

    @property
    def exit_code(self) -> int:
        """0 when nothing crossed or every crossing is filed as an issue; 1 when a crossing is only
        printed (no --issues) or an endpoint could not be monitored."""
        unfiled = any(e.outcome is Outcome.CROSSED and e.issue is None for e in self.endpoints)
        return 1 if unfiled or any(e.outcome is Outcome.FAILED for e in self.endpoints) else 0


@dataclass(frozen=True)
class AlertRequest:
    repo: Repository
    models: tuple[str, ...] = ()  # () = every model
    environments: tuple[str, ...] = ()  # () = every environment
    capture: str = ""  # one root for every endpoint (a directory or s3://); "" = each deployment's sink
    since: datetime | None = None
    until: datetime | None = None
    cache: Path | None = None
    now: datetime | None = None
    dispatch: str = ""  # the retraining workflow's file name; "" dispatches nothing
    ref: str = "main"  # the branch the retraining runs on
    run_url: str = ""  # the workflow run that files the issues, linked from them


ClientMaker = Callable[[], GitHubClient]


def run_alerts(
    request: AlertRequest, client: ClientMaker | None = None, progress: Progress | None = None
) -> AlertResult:
    """Monitor every selected endpoint; with a client, file each crossing and dispatch retraining."""
    if request.dispatch and client is None:
        raise UsageError("dispatching retraining needs the issues it cites: give --issues too")
    say = progress or (lambda _: None)
    specs = require_specs(request.repo, "{errors} problem(s) in the repository; fix them first (`gitops-ml validate`)")
    endpoints = sorted({(d.model, d.environment) for d in specs.deployments})
    for flag, wanted, known in (
        ("--model", request.models, {m for m, _ in endpoints}),
        ("--env", request.environments, {e for _, e in endpoints}),
    ):
        unknown = sorted(set(wanted) - known)
        if unknown:
            raise UsageError(f"{flag} {unknown[0]}: no endpoint has it", hint=f"known: {', '.join(sorted(known))}")
    selected = [
        (m, e)
        for m, e in endpoints
        if (not request.models or m in request.models) and (not request.environments or e in request.environments)
    ]
    result = AlertResult(filed=client is not None)
    for model, environment in selected:
        say(f"monitoring {model} in {environment}")
        result.endpoints.append(_monitor(request, model, environment, say))
    crossed = [e for e in result.endpoints if e.outcome is Outcome.CROSSED]
    if client is None or not crossed:
        return result
    with client() as github:
        for endpoint in crossed:
            _file(github, endpoint, request)
        if request.dispatch:
            for name in sorted({e.model for e in crossed if e.retrain}):
                evidence = tuple(
                    sorted(e.issue.number for e in crossed if e.model == name and e.retrain and e.issue is not None)
                )
                github.dispatch_workflow(
                    request.dispatch, ref=request.ref, inputs={"model": name, "evidence": ",".join(map(str, evidence))}
                )
                result.dispatches.append(Dispatch(name, request.dispatch, evidence))
    return result


def _monitor(request: AlertRequest, model: str, environment: str, say: Progress) -> EndpointAlert:
    monitor = MonitorRequest(
        request.repo, model, environment, request.capture, request.since, request.until, "", request.cache
    )
    if request.now is not None:
        monitor = dataclasses.replace(monitor, now=request.now)
    try:
        report = run_monitor(monitor, say)
    except UsageError as exc:
        return EndpointAlert(model, environment, Outcome.SKIPPED, exc.message)
    except GitopsMlError as exc:
        where = f"{exc.location}: " if exc.location is not None else ""
        return EndpointAlert(model, environment, Outcome.FAILED, where + exc.message)
    outcome = {Status.OK: Outcome.OK, Status.CROSSED: Outcome.CROSSED, Status.NO_DATA: Outcome.NO_DATA}[report.status]
    return EndpointAlert(model, environment, outcome, report.headline, report)


def _file(github: GitHubClient, endpoint: EndpointAlert, request: AlertRequest) -> None:
    report = endpoint.report
    assert report is not None
    marker = issue_marker(endpoint.model, endpoint.environment)
    existing = github.find_issue(LABEL, marker)
    retrained_for = _retrained_for(existing.body) if existing is not None else None
    endpoint.retrain = bool(request.dispatch) and retrained_for != report.version
    title = f"gitops-ml monitor: {endpoint.model} in {endpoint.environment} crossed a threshold"
    body = issue_body(report, marker, request, retrained_for=report.version if endpoint.retrain else retrained_for)
    if existing is None:
        endpoint.issue = github.create_issue(title=title, body=body, labels=(LABEL,))
        endpoint.issue_created = True
    else:
        endpoint.issue = github.update_issue(existing.number, title=title, body=body)


def _retrained_for(body: str) -> str | None:
    match = _RETRAINED.search(body)
    return match.group(1) if match else None


def issue_body(report: MonitorReport, marker: str, request: AlertRequest, *, retrained_for: str | None) -> str:
    """The issue: its marker, the monitor report, and what was done about it."""
    lines = [marker]
    if retrained_for:
        lines.append(f"<!-- gitops-ml:retrained-for {retrained_for} -->")
    lines += ["", to_markdown(report).rstrip("\n"), "", "---"]
    run = f" ([run]({request.run_url}))" if request.run_url else ""
    stamp = (
        f"{report.generated:%Y-%m-%d %H:%M} UTC"
        if report.generated.utcoffset() is not None
        else f"{report.generated:%Y-%m-%d %H:%M}"
    )
    lines.append(
        f"Updated by `gitops-ml alert` at {stamp}{run}; every scheduled run that finds a threshold crossed updates this issue."
    )
    if retrained_for and request.dispatch:
        lines.append(
            f"Retraining of {report.model} {retrained_for} was dispatched (`{request.dispatch}`); its pull request cites this issue. "
            "Close this issue once the drift is handled: the next crossing opens a new one and retrains again."
        )
    elif not request.dispatch:
        lines.append("No retraining was dispatched (`gitops-ml alert` ran without --dispatch).")
    return "\n".join(lines) + "\n"

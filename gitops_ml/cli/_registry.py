"""Shared reporting for the registry verbs: JSON shapes and text pieces (only cli/ prints).

The JSON field names are the public contract of `--format json`; they are built here from the
result objects of `gitops_ml.registry.service`, never inside the service.
"""

from __future__ import annotations

import math
from typing import Any

import click

from gitops_ml.cli._common import print_json
from gitops_ml.history.fold import CommitInfo, Run, VersionRecord

REV_OPTION = click.option(
    "--rev", default="HEAD", show_default=True, metavar="REF",
    help="Answer at this git revision (branch, tag or commit) instead of HEAD.",
)


def strict(data: Any) -> Any:
    """data with every non-finite float (a hand-written `.nan` or `.inf` metric, an overflowing
    delta) made None: JSON has no NaN or Infinity, and strict parsers refuse them."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: strict(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [strict(value) for value in data]
    return data


def print_strict_json(data: Any) -> None:
    """The only way the registry and edit verbs print JSON."""
    print_json(strict(data))


def commit_json(commit: CommitInfo) -> dict[str, Any]:
    return {"sha": commit.sha, "date": commit.date, "author": commit.author, "email": commit.email, "subject": commit.subject}


def run_json(run: Run) -> dict[str, Any]:
    return {
        "environment": run.environment,
        "version": str(run.version),
        "since": run.since.date,
        "sinceCommit": run.since.sha,
        "until": run.until.date if run.until else None,
        "untilCommit": run.until.sha if run.until else None,
    }


def record_json(model: str, record: VersionRecord) -> dict[str, Any]:
    spec = record.spec
    return {
        "model": model,
        "version": str(record.version),
        "commit": commit_json(record.commit),
        "tag": f"{model}@v{record.version}" if record.tagged else None,
        "artifact": {"uri": spec.artifact.uri, "sha256": spec.artifact.sha256},
        "framework": {"name": spec.framework, "version": spec.framework_version} if spec.framework else None,
        "metrics": dict(spec.metrics),
        "lineage": dict(spec.lineage),
        "environments": [run_json(r) for r in record.runs],
    }


def day(commit: CommitInfo) -> str:
    """The date part of an ISO 8601 commit date; enough to read a history."""
    return commit.date[:10]


def short(sha: str) -> str:
    return sha[:12]


def number(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def run_text(run: Run) -> str:
    until = day(run.until) if run.until else "now"
    return f"{run.environment} {day(run.since)} .. {until}"

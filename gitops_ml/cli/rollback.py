"""`gitops-ml rollback MODEL --env ENV`: move an environment's pin back."""

from __future__ import annotations

import click

from gitops_ml.cli._common import handle_errors, repository_options
from gitops_ml.cli._edit_common import delivery_options, finish_interrupted, report, run_edit
from gitops_ml.edits.promotion import RollbackRequest, plan_rollback
from gitops_ml.repo.handle import Repository


@click.command("rollback")
@click.argument("model")
@click.option("--env", "env", required=True, metavar="ENV", help="Environment to roll back.")
@click.option("--to", "to", metavar="V", help="Version to go back to (default: the one ENV ran before).")
@repository_options()
@delivery_options
def command(model: str, env: str, to: str | None, repo: Repository, branch: str | None, push: bool, pr: bool, fmt: str) -> None:
    """Pin MODEL in ENV back to the version it ran before (or --to V), as a reviewable change.
    When ENV runs a canary, remove the canary instead: the stable version answers every request again.

    Nothing undoes a rollback behind your back: it is a commit like any other.
    """
    with handle_errors():
        finish_interrupted(repo)
        plan = plan_rollback(RollbackRequest(repo, model, env, to))
        report(run_edit(repo, plan, branch, push, pr), fmt)

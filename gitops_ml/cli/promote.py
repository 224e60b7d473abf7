"""`gitops-ml promote MODEL --to ENV [--canary PERCENT]`: move an environment's pin forward, or in steps through a canary."""

from __future__ import annotations

import click

from gitops_ml.cli._common import handle_errors, repository_options
from gitops_ml.cli._edit_common import delivery_options, finish_interrupted, report, run_edit
from gitops_ml.edits.promotion import PromoteRequest, plan_promote
from gitops_ml.repo.handle import Repository


@click.command("promote")
@click.argument("model")
@click.option("--to", "--env", "to", required=True, metavar="ENV", help="Environment whose deployment file is moved (--env is the same).")
@click.option("--version", metavar="V", help="Version to run (default: the newest).")
@click.option("--from", "from_env", metavar="ENV", help="Run the version that this environment runs.")
@click.option("--canary", "canary", type=click.IntRange(0, 100), metavar="PERCENT",
              help="Add a canary of the version (default: the newest) answering PERCENT % of requests, or move the canary's weight.")
@repository_options()
@delivery_options
def command(model: str, to: str, version: str | None, from_env: str | None, canary: int | None, repo: Repository, branch: str | None, push: bool, pr: bool, fmt: str) -> None:
    """Pin MODEL in environment ENV to a newer version: deployments/ENV/MODEL.yaml gets `model: MODEL@V`.

    The version must exist in git history and be newer than what ENV runs (use rollback to go back).
    In steps: `--canary 10` adds a canary of the newest version answering 10 % of requests, `--canary 50`
    moves its weight, and without --canary a declared canary is promoted (`model:` becomes it).
    """
    with handle_errors():
        finish_interrupted(repo)
        plan = plan_promote(PromoteRequest(repo, model, to, version, from_env, canary))
        report(run_edit(repo, plan, branch, push, pr), fmt)

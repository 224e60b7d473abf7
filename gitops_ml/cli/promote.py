"""`gitops-ml promote MODEL --to ENV`: move an environment's pin forward."""

from __future__ import annotations

import click

from gitops_ml.cli._common import handle_errors, repository_options
from gitops_ml.cli._edit_common import delivery_options, finish_interrupted, report, run_edit
from gitops_ml.edits.plans import PromoteRequest, plan_promote
from gitops_ml.repo.handle import Repository


@click.command("promote")
@click.argument("model")
@click.option("--to", "to", required=True, metavar="ENV", help="Environment whose deployment file is moved.")
@click.option("--version", metavar="V", help="Version to run (default: the newest).")
@click.option("--from", "from_env", metavar="ENV", help="Run the version that this environment runs.")
@repository_options()
@delivery_options
def command(model: str, to: str, version: str | None, from_env: str | None, repo: Repository, branch: str | None, push: bool, pr: bool, fmt: str) -> None:
    """Pin MODEL in environment ENV to a newer version: deployments/ENV/MODEL.yaml gets `model: MODEL@V`.

    The version must exist in git history and be newer than what ENV runs (use rollback to go back).
    """
    with handle_errors():
        finish_interrupted(repo)
        plan = plan_promote(PromoteRequest(repo, model, to, version, from_env))
        report(run_edit(repo, plan, branch, push, pr), fmt)

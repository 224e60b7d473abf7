"""Entry point: a click group that imports each verb's module only when that verb runs."""

from __future__ import annotations

import importlib
from typing import Any

import click

from gitops_ml import __version__

# verb -> module defining `command` (a click.Command); modules load lazily so `--help` is fast
COMMANDS: dict[str, str] = {
    "init": "gitops_ml.cli.init",
    "validate": "gitops_ml.cli.validate",
    "schema": "gitops_ml.cli.schema",
    "render": "gitops_ml.cli.render",
    "diff": "gitops_ml.cli.diff",
    "build": "gitops_ml.cli.build",
    "lock": "gitops_ml.cli.lock",
    "verify-image": "gitops_ml.cli.verify_image",
    "run-image": "gitops_ml.cli.run_image",
    "serve": "gitops_ml.cli.serve",
    "call": "gitops_ml.cli.call",
    "models": "gitops_ml.cli.models",
    "history": "gitops_ml.cli.history",
    "show": "gitops_ml.cli.show",
    "compare": "gitops_ml.cli.compare",
    "tag": "gitops_ml.cli.tag",
    "bump": "gitops_ml.cli.bump",
    "promote": "gitops_ml.cli.promote",
    "rollback": "gitops_ml.cli.rollback",
    "pr-comment": "gitops_ml.cli.pr_comment",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name, module in COMMANDS.items() if importlib.util.find_spec(module) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None or importlib.util.find_spec(module) is None:
            return None
        command = importlib.import_module(module).command
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gitops-ml")
@click.option("--traceback", is_flag=True, envvar="GITOPS_ML_TRACEBACK", help="Show Python tracebacks of errors (for bug reports).")
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    """Model management for Kubernetes GitOps: validate, render, build, serve and promote models
    that live in a git repository."""
    ctx.ensure_object(dict)
    ctx.obj["traceback"] = traceback


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="gitops-ml")


import importlib.util  # noqa: E402  (kept after the table for readability)

"""Entry point: a click group that imports a verb's module only when that verb runs.

`gitops-ml --help` lists the verbs from the table below without importing any of them, so it
answers at once; tests/test_cli.py keeps each summary equal to its verb's own help.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from typing import NoReturn

import click

from gitops_ml import __version__

# verb -> (module defining `command`, the summary `--help` lists)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("gitops_ml.cli.init", "Create a new gitops-ml repository in DIRECTORY"),
    "validate": ("gitops_ml.cli.validate", "Check every file of REPO against its schema and the cross-file rules"),
    "schema": ("gitops_ml.cli.schema", "JSON Schemas: the four file kinds, and model input schemas"),
    "render": ("gitops_ml.cli.render", "Render Kustomize bases, overlays and the Argo CD / Flux objects of REPO"),
    "diff": ("gitops_ml.cli.diff", "Show what a change does to the rendered manifests, against --base REF"),
    "build": ("gitops_ml.cli.build", "Build one image per model of REPO through the Docker engine"),
    "lock": ("gitops_ml.cli.lock", "Lock a model's dependencies with hashes for its image's platform and Python"),
    "verify-image": ("gitops_ml.cli.verify_image", "Check an image's labels, SBOM and provenance against the version in git"),
    "run-image": ("gitops_ml.cli.run_image", "Run MODEL's built image locally, score its sample and stop it"),
    "serve": ("gitops_ml.cli.serve", "Serve MODEL_DIR locally with the same server as the image"),
    "predict": ("gitops_ml.cli.predict", "Score one request with MODEL_DIR, without a server"),
    "predictions": ("gitops_ml.cli.predictions", "Score the committed sample with the committed version and the working tree's: what changed"),
    "call": ("gitops_ml.cli.call", "Send a scoring request to URL and print the JSON answer"),
    "models": ("gitops_ml.cli.models", "List the models with their newest version and what each environment runs"),
    "history": ("gitops_ml.cli.history", "Show every version of MODEL and where it ran"),
    "show": ("gitops_ml.cli.show", "Show MODEL@VERSION: commit, image, artifact, metrics, files, environments"),
    "compare": ("gitops_ml.cli.compare", "Compare two versions of one model"),
    "tag": ("gitops_ml.cli.tag", "Tag every registered version with `<model>@v<version>`"),
    "bump": ("gitops_ml.cli.bump", "Register a new version of MODEL, as a pull request"),
    "promote": ("gitops_ml.cli.promote", "Move an environment's pin of MODEL to a newer version, as a pull request"),
    "rollback": ("gitops_ml.cli.rollback", "Move an environment's pin of MODEL back, as a pull request"),
    "import": ("gitops_ml.cli.imports", "Import a model from another registry (MLflow) as a gitops-ml model, no score.py"),
    "pr-comment": ("gitops_ml.cli.pr_comment", "Create or update the gitops-ml comment on a pull request"),
    "status": ("gitops_ml.cli.status", "What runs where, read from the cluster, against what git says"),
    "profile": ("gitops_ml.cli.profile", "Write a model version's reference profile from its training data"),
    "monitor": ("gitops_ml.cli.monitor", "Compare captured requests with the reference profile: drift and quality"),
    "alert": ("gitops_ml.cli.alert", "Monitor every endpoint; file a crossed threshold as a GitHub issue and dispatch retraining"),
    "canary": ("gitops_ml.cli.canary", "Judge a canary against the stable version with the live metrics in Prometheus"),
    "shadow": ("gitops_ml.cli.shadow", "Compare a shadow version's captured answers with the stable version's"),
}

EXIT_CODES = """Exit codes: 0 success; 1 a check failed (findings, a stale render, a failed analysis); 2 usage
error; 3 configuration (no gitops-ml.yaml, a bad setting); 4 the registry or an edit refused (unknown
version, uncommitted changes); 5 an external tool or service failed (Kustomize, Docker, a registry,
GitHub); 6 an artifact cannot be fetched or does not match its sha256; 7 `monitor`: no data to judge in
the window (not a failure); 70 internal error (a bug:
rerun with --traceback and report it); 130 interrupted.

Shell completion: eval "$(_GITOPS_ML_COMPLETE=bash_source gitops-ml)" in ~/.bashrc (zsh_source,
fish_source for zsh and fish)."""


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None or importlib.util.find_spec(entry[0]) is None:
            return None
        command = importlib.import_module(entry[0]).command
        assert isinstance(command, click.Command)
        command.short_help = command.short_help or entry[1]  # one summary, here and in the listing
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # the table's summaries: importing every verb (numpy, GitPython, jsonschema...) would make
        # `--help` take a second
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, summary) in sorted(COMMANDS.items())])


@click.group(cls=LazyGroup, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gitops-ml")
@click.option("--traceback", is_flag=True, envvar="GITOPS_ML_TRACEBACK", help="Show Python tracebacks of errors (for bug reports).")
@click.pass_context
def cli(ctx: click.Context, traceback: bool) -> None:
    """Model management for Kubernetes GitOps: validate, render, build, serve and promote models
    that live in a git repository."""
    ctx.ensure_object(dict)
    ctx.obj["traceback"] = traceback


def _wants_json(args: list[str]) -> bool:
    return any(a == "--format=json" or (a == "--format" and i + 1 < len(args) and args[i + 1] == "json") for i, a in enumerate(args))


def main(argv: list[str] | None = None) -> NoReturn:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        # without standalone mode click returns a verb's exit code (ctx.exit) instead of exiting
        code = cli.main(args=args, prog_name="gitops-ml", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        if _wants_json(args):
            # a mistake on the command line is an error like any other for a tool reading JSON
            click.echo(json.dumps({"ok": False, "exitCode": exc.exit_code, "error": {"message": exc.format_message(), "kind": "usage"}}, indent=2))
        else:
            exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)

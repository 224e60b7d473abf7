"""Shared CLI plumbing: error handling and exit codes, finding reporters, JSON output, progress.

A verb wraps its body in `handle_errors()`; a GitopsMlError becomes `error: path:line:col: message`,
a `hint:` line, and the error's exit code. Anything else is reported as a bug, with the traceback
only under --traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import click

from gitops_ml.errors import GitopsMlError, ValidationError
from gitops_ml.types import Finding

if TYPE_CHECKING:
    from gitops_ml.repo.handle import Repository

FORMAT_OPTION = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format."
)


REPO_HELP = "Repository directory (its gitops-ml.yaml is found upwards, as git finds .git); default: the current directory."


def _check_directory(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """While the command line is parsed: a repository directory that does not exist is a usage error."""
    if value is not None and not value.is_dir():
        raise click.BadParameter(f"{value} is not a directory" if value.exists() else f"directory {value} does not exist", ctx=ctx, param=param)
    return value


def repository_options(*, positional: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`-C/--repo DIR` on every verb that works on a repository (and a positional REPO where the
    verb always had one): the verb receives `repo`, the Repository opened there."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def wrapper(*args: Any, repo_dir: Path | None = None, repo_option: Path | None = None, **kwargs: Any) -> Any:
            from gitops_ml.repo.handle import Repository  # noqa: PLC0415 - keeps `gitops-ml --help` light

            ctx = click.get_current_context()
            if repo_dir is not None and repo_option is not None and repo_dir.absolute() != repo_option.absolute():
                raise click.UsageError(f"the repository is given twice ({repo_dir} and -C {repo_option}); give it once", ctx=ctx)
            chosen = repo_option if repo_option is not None else repo_dir
            return func(*args, repo=Repository.open(chosen if chosen is not None else Path(".")), **kwargs)

        command = click.option(
            "-C", "--repo", "repo_option", type=click.Path(file_okay=False, path_type=Path), metavar="DIR", help=REPO_HELP, callback=_check_directory,
        )(wrapper)
        if positional:
            command = click.argument(
                "repo_dir", required=False, metavar="[REPO]", type=click.Path(file_okay=False, path_type=Path), callback=_check_directory,
            )(command)
        return command

    return decorate


def require_repository(repo: "Repository") -> None:
    """ConfigError (exit 3) when no gitops-ml.yaml was found: every repository verb needs one."""
    from gitops_ml.errors import ConfigError, Location  # noqa: PLC0415
    from gitops_ml.types import REPOSITORY_FILE  # noqa: PLC0415

    if not (repo.root / REPOSITORY_FILE).is_file():
        raise ConfigError(
            f"repository file is missing: no {REPOSITORY_FILE} in {repo.root} or its parents up to the git work tree",
            location=Location(REPOSITORY_FILE),
            hint="create a repository with `gitops-ml init DIR`, or point at one with -C DIR",
        )


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def print_error(exc: GitopsMlError) -> None:
    if isinstance(exc, ValidationError) and exc.findings:
        for finding in exc.findings:
            echo_err(f"error: {finding}")
            hint = getattr(finding, "hint", "")  # findings are typed `object` in errors.py, which imports no types
            if hint and hint not in str(finding) and hint != exc.hint:
                echo_err(f"  hint: {hint}")
    else:
        echo_err(f"error: {exc}")
    if exc.hint:
        echo_err(f"hint: {exc.hint}")


def error_json(exc: GitopsMlError) -> dict[str, Any]:
    """An error as `--format json` reports it (on stdout, like the verb's result would have been)."""
    error: dict[str, Any] = {"message": exc.message, "kind": type(exc).__name__, "hint": exc.hint}
    if exc.location is not None:
        error.update(path=exc.location.path, line=exc.location.line, col=exc.location.col)
    findings = [finding_dict(f) for f in exc.findings if isinstance(f, Finding)] if isinstance(exc, ValidationError) else []
    return {"ok": False, "exitCode": exc.exit_code, "error": error, **({"findings": findings} if findings else {})}


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """Errors become messages and exit codes: `error: path:line:col: message` and `hint:` on stderr,
    or, when the verb runs with --format json, one JSON object on stdout."""
    ctx = click.get_current_context()
    traceback = bool((ctx.find_root().obj or {}).get("traceback"))
    as_json = ctx.params.get("fmt") == "json"
    try:
        yield
    except GitopsMlError as exc:
        if traceback:
            raise
        if as_json:
            print_json(error_json(exc))
        else:
            print_error(exc)
        ctx.exit(exc.exit_code)
    except click.UsageError as exc:
        if not as_json:
            raise
        print_json({"ok": False, "exitCode": exc.exit_code, "error": {"message": exc.format_message(), "kind": "usage"}})
        ctx.exit(exc.exit_code)
    except KeyboardInterrupt:
        echo_err("interrupted")
        ctx.exit(130)
    except BrokenPipeError:
        # the reader went away (`| head`): stop quietly, as other Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        ctx.exit(141)
    except (click.exceptions.Exit, click.ClickException, click.Abort):
        raise
    except Exception as exc:  # a bug: say so, do not dump a traceback on the user
        if traceback:
            raise
        if as_json:
            print_json({"ok": False, "exitCode": 70, "error": {"message": f"internal error: {type(exc).__name__}: {exc}", "kind": "internal"}})
        echo_err(f"internal error: {type(exc).__name__}: {exc}")
        echo_err("hint: this is a bug in gitops-ml; rerun with --traceback and report it")
        ctx.exit(70)


def print_json(data: Any) -> None:
    # allow_nan=False: a NaN that slipped through is a loud bug, never output strict parsers refuse
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str, allow_nan=False))


def finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "path": f.location.path,
        "line": f.location.line,
        "col": f.location.col,
        "jsonPath": f.location.json_path,
        "severity": str(f.severity.value),
        "message": f.message,
        "hint": f.hint,
    }


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def report_findings(findings: Sequence[Finding], fmt: str, *, files: int = 0, prefix: str = "") -> None:
    """Print findings as text (stderr), one JSON document, or GitHub workflow commands."""
    errors = [f for f in findings if f.severity == "error"]
    if fmt == "json":
        print_json({"ok": not errors, "files": files, "errors": len(errors), "findings": [finding_dict(f) for f in findings]})
        return
    if fmt == "github":
        for f in findings:
            path = f"{prefix}{f.location.path}"
            props = f"file={_escape_prop(path)}"
            if f.location.line:
                props += f",line={f.location.line},col={f.location.col}"
            props += f",title={_escape_prop('gitops-ml')}"
            text = f.message + (f" (hint: {f.hint})" if f.hint and f.hint not in f.message else "")
            click.echo(f"::{f.severity.value} {props}::{_escape_data(text)}")
        return
    for f in findings:
        echo_err(f"{f.severity.value}: {f}")
        if f.hint and f.hint not in f.message:
            echo_err(f"  hint: {f.hint}")
    if errors:
        echo_err(f"{len(errors)} error(s) in {files} file(s)")
    else:
        click.echo(f"ok: {files} file(s) valid")


def progress_line(message: str) -> None:
    """One line of progress on stderr; plain in CI and when not a terminal."""
    stream = sys.stderr
    stream.write(message + "\n")
    stream.flush()


ENV_MANAGER_OPTION = click.option(
    "--env-manager", type=click.Choice(["venv", "local"]), default="venv", show_default=True, envvar="GITOPS_ML_ENV_MANAGER",
    help="venv: run the model in its own environment (its requirements, the server's, this gitops-ml), made once and "
    "cached under ~/.cache/gitops-ml/envs (uv when installed, else pip); local: in this Python, which must have them.",
)

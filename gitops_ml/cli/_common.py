"""Shared CLI plumbing: error handling and exit codes, finding reporters, JSON output, progress.

A verb wraps its body in `handle_errors()`; a GitopsMlError becomes `error: path:line:col: message`,
a `hint:` line, and the error's exit code. Anything else is reported as a bug, with the traceback
only under --traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import click

from gitops_ml.errors import GitopsMlError, ValidationError
from gitops_ml.types import Finding

if TYPE_CHECKING:
    from gitops_ml.repo.handle import Repository

FORMAT_OPTION = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format."
)


def discover(ctx: click.Context, param: click.Parameter, value: Path) -> "Repository":
    """Click callback of REPO arguments and options: an existing directory, then the repository
    handle opened there (gitops-ml.yaml found upwards, as git finds .git)."""
    from gitops_ml.repo.handle import Repository  # noqa: PLC0415 - keeps `gitops-ml --help` light

    if not value.is_dir():
        raise click.BadParameter(f"{value} is not a directory" if value.exists() else f"directory {value} does not exist", ctx=ctx, param=param)
    return Repository.open(value)


def repo_argument(func: Any) -> Any:
    return click.argument(
        "repo", required=False, default=".", type=click.Path(file_okay=False, path_type=Path), callback=discover
    )(func)


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


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    ctx = click.get_current_context()
    traceback = bool((ctx.find_root().obj or {}).get("traceback"))
    try:
        yield
    except GitopsMlError as exc:
        if traceback:
            raise
        print_error(exc)
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

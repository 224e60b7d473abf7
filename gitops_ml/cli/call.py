"""`gitops-ml call URL`: score a request against a deployed or local endpoint and print the answer."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from gitops_ml.cli._common import handle_errors
from gitops_ml.errors import UsageError


def read_data(spec: str) -> bytes:
    """`@file`, `-` (stdin) or literal JSON; checked to be JSON before it is sent."""
    if spec == "-":
        raw = sys.stdin.buffer.read()
    elif spec.startswith("@"):
        path = Path(spec[1:])
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    else:
        try:
            raw = spec.encode()
        except UnicodeEncodeError as exc:
            raise UsageError(f"--data holds bytes that are not text ({exc.reason})", hint="pass @FILE to send a file's bytes") from exc
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"--data is not JSON: {exc}", hint="pass @sample.json to send a file") from exc
    return raw


def _finite(value: float) -> float:
    if value != value:  # NaN passes every range comparison
        raise click.BadParameter("nan is not a number of seconds")
    return value


@click.command("call")
@click.argument("url")
@click.option("--data", "data", required=True, help="Request body: @FILE, - for stdin, or literal JSON.")
@click.option("--key", envvar="GITOPS_ML_API_KEY", help="API key (or $GITOPS_ML_API_KEY); omit for a server without auth.")
@click.option("--timeout", type=click.FloatRange(0, 86400, min_open=True), default=30.0, show_default=True, callback=lambda _c, _p, v: _finite(v),
              help="Seconds to wait for the answer.")
@click.option("--verbose", "-v", is_flag=True, help="Also print the status, request id and model version on stderr.")
def command(url: str, data: str, key: str | None, timeout: float, verbose: bool) -> None:
    """Send a scoring request to URL (http://host:port scores at /score) and print the JSON answer.

    Exits 1 when the endpoint answers an error status (refused input, bad key, the model failed), as
    `predict` does, and 5 when there is no usable answer (unreachable, timed out, not JSON).
    """
    from gitops_ml.adapters.endpoint import score

    with handle_errors():
        result = score(url, None, key=key, timeout=timeout, raw=read_data(data))
        click.echo(orjson.dumps(result.data, option=orjson.OPT_INDENT_2).decode())
        if verbose:
            click.echo(f"status {result.status}, request id {result.request_id}, model version {result.model_version}", err=True)

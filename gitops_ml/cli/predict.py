"""`gitops-ml predict MODEL_DIR --data @sample.json`: score once without a server, as `cog predict`
does: the server's decoding, the model's init() and run(), the server's answer, in the model's own
environment (or this one with --env-manager local)."""

from __future__ import annotations

from pathlib import Path

import click
import orjson

from gitops_ml.cli._common import ENV_MANAGER_OPTION, echo_err, handle_errors, in_ci, progress_line
from gitops_ml.cli.call import read_data
from gitops_ml.cli.serve import ServeRequest, _spec, make_settings
from gitops_ml.errors import GitopsMlError
from gitops_ml.types import Kind, ManifestSpec


@click.command("predict")
@click.argument("model_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--data", "data", required=True, help="Request body: @FILE, - for stdin, or literal JSON (e.g. @models/iris/sample.json).")
@click.option("--env", "env", help="Environment whose deployments/<env>/<model>.yaml settings apply (batching, limits).")
@ENV_MANAGER_OPTION
def command(model_dir: Path, data: str, env: str | None, env_manager: str) -> None:
    """Score one request with MODEL_DIR (models/<model>) and print the answer, without a server.

    Exits 0 with the model's answer, 1 when the model refuses the input (4xx) or fails (5xx, or
    init() fails), with the server's message.
    """
    with handle_errors():
        body = read_data(data)
        settings, files = make_settings(ServeRequest(model_dir, env, "127.0.0.1", 0, (), None, True, None))
        if env_manager == "local":
            from gitops_ml.serving.predict import predict  # noqa: PLC0415 - numpy and pandas load only here

            result = predict(settings, files, body)
            status, answer, error = result.status, result.body, result.error
        else:
            from gitops_ml.adapters.artifacts import cache_root  # noqa: PLC0415
            from gitops_ml.local.environment import ensure_environment  # noqa: PLC0415
            from gitops_ml.local.runner import predict_in  # noqa: PLC0415

            manifest = ManifestSpec.from_doc(_spec(model_dir / "manifest.yaml", Kind.MANIFEST))
            environment = ensure_environment(model_dir, manifest, cache=cache_root(), progress=progress_line, label=str(model_dir))
            if environment.created and not in_ci():
                echo_err(f"environment ready in {environment.seconds:.1f} s ({environment.installer})")
            scored = predict_in(environment.python, settings, files, body)
            status, answer, error = scored.status, scored.body, scored.error
            if scored.log:
                echo_err(scored.log)
        if error:
            # the server's reason is located already (score.py:line:col where init() failed)
            fix = f"the built-in {files.builtin} could not load the artifact; " if files.builtin else ""
            raise GitopsMlError(f"the model did not load: {error}", hint=f"{fix}`gitops-ml serve` on the model directory shows the traceback")
        try:
            shown = orjson.dumps(orjson.loads(answer), option=orjson.OPT_INDENT_2).decode()
        except orjson.JSONDecodeError:
            shown = answer.decode("utf-8", "replace")
        click.echo(shown)
        if status >= 400:
            message = orjson.loads(answer).get("message", "") if answer.startswith(b"{") else ""
            raise GitopsMlError(f"the model answered {status}: {message or 'see the answer above'}")

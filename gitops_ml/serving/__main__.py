"""`python -m gitops_ml.serving`: the image's entrypoint. Settings come from GITOPS_ML_* variables
(the rendered ConfigMap), parsed strictly; flags override them. argparse, not click: the image needs no
CLI deps. Everything it says goes to stderr as JSON log lines, like the server's own; a setting or
file that cannot be used stops it with a non-zero exit (a pod in CrashLoopBackOff, its reason logged).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from gitops_ml.errors import ConfigError, GitopsMlError, UsageError
from gitops_ml.serving.model_files import ModelFiles
from gitops_ml.serving.settings import (
    KUBERNETES_DRAIN_SECONDS,
    MODEL_DIR,
    PREFIX,
    Rule,
    ServerSettings,
    parse_value,
    setting_names,
)
from gitops_ml.serving.telemetry import log_event

DRAIN_RULE = Rule(low=0, high=600)


def default_drain_seconds() -> float:
    raw = os.environ.get("GITOPS_ML_DRAIN_SECONDS")
    if raw:
        return float(parse_value("GITOPS_ML_DRAIN_SECONDS", raw, float, DRAIN_RULE))
    # Inside a cluster the Service keeps sending traffic for a few seconds after SIGTERM, until
    # the endpoint removal propagates; elsewhere nobody routes to us, so stop at once.
    return KUBERNETES_DRAIN_SECONDS if os.environ.get("KUBERNETES_SERVICE_HOST") else 0.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m gitops_ml.serving",
        description="gitops-ml scoring server: loads score.py from the model directory, calls init() once and "
        "run(data) per request. Settings come from GITOPS_ML_* environment variables; flags override them.",
    )
    parser.add_argument("--model-dir", help=f"model directory with score.py, schema.json, sample.json (default: $GITOPS_ML_MODEL_DIR or {MODEL_DIR})")
    parser.add_argument("--host", help="address to listen on (default: $GITOPS_ML_HOST or 0.0.0.0)")
    parser.add_argument("--port", type=int, help="port to listen on (default: $GITOPS_ML_PORT or 8080)")
    parser.add_argument("--keys-dir", help="directory with the files 'primary' and 'secondary' (default: $GITOPS_ML_KEYS_DIR)")
    parser.add_argument("--no-auth", action="store_true", help="do not require an API key")
    parser.add_argument("--drain-seconds", type=float, help="after SIGTERM, seconds to keep serving with readiness false before stopping (default: $GITOPS_ML_DRAIN_SECONDS, else 5 in Kubernetes, 0 elsewhere)")
    parser.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto", help="event loop (default: uvloop when installed)")
    return parser.parse_args(argv)


def fail(error: GitopsMlError) -> int:
    if error.hint:
        log_event("error", str(error), hint=error.hint)
    else:
        log_event("error", str(error))
    return error.exit_code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    unknown = sorted(name for name in os.environ if name.startswith(PREFIX) and name not in setting_names())
    if unknown:
        log_event("warning", "unknown GITOPS_ML_* variables are ignored (a typo?)", variables=unknown)
    try:
        settings = ServerSettings.from_env(model_dir=MODEL_DIR)
        drain = args.drain_seconds if args.drain_seconds is not None else default_drain_seconds()
    except ValueError as exc:
        return fail(ConfigError(str(exc)))
    except ConfigError as exc:
        return fail(exc)
    overrides: dict[str, object] = {}
    if args.model_dir:
        overrides["model_dir"] = args.model_dir
    if args.host:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.keys_dir:
        overrides["keys_dir"] = args.keys_dir
    if args.no_auth:
        overrides["auth_enabled"] = False
    settings = dataclasses.replace(settings, **overrides)  # type: ignore[arg-type]
    if not Path(settings.model_dir).is_dir():
        return fail(UsageError(f"model directory {settings.model_dir} does not exist"))
    files = ModelFiles.from_env()
    if not files.builtin and not (Path(settings.model_dir) / files.script).is_file():
        return fail(UsageError(f"{Path(settings.model_dir) / files.script} does not exist"))
    from gitops_ml.serving.server import run_server  # noqa: PLC0415 - imports uvicorn, numpy, pandas

    try:
        api_keys = _keys_from_pipe()
        if api_keys:
            settings = dataclasses.replace(settings, auth_enabled=True)
        run_server(settings, files=files, api_keys=api_keys, drain_seconds=drain, loop=None if args.loop == "auto" else args.loop)
    except GitopsMlError as exc:
        return fail(exc)
    return 0


def _keys_from_pipe() -> tuple[str, ...]:
    """Keys handed over by `gitops-ml serve` through an inherited pipe ($GITOPS_ML_KEYS_FD), one a line:
    they are never written to disk, so nothing is left of them when the processes are gone."""
    raw = os.environ.get("GITOPS_ML_KEYS_FD", "")
    if not raw:
        return ()
    try:
        with os.fdopen(int(raw), "rb") as pipe:
            text = pipe.read().decode("utf-8")
    except (ValueError, OSError) as exc:
        raise ConfigError(f"GITOPS_ML_KEYS_FD={raw!r}: cannot read the keys from it ({exc})") from exc
    return tuple(line.strip() for line in text.splitlines() if line.strip())


if __name__ == "__main__":
    sys.exit(main())

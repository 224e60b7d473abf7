"""`python -m gitops_ml.serving`: the image's entrypoint. Settings come from GITOPS_ML_* variables
(the rendered ConfigMap); flags override them. argparse, not click: the image needs no CLI deps.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from gitops_ml.serving.app import ModelFiles
from gitops_ml.serving.server import run_server
from gitops_ml.serving.settings import KUBERNETES_DRAIN_SECONDS, MODEL_DIR, ServerSettings


def default_drain_seconds() -> float:
    raw = os.environ.get("GITOPS_ML_DRAIN_SECONDS")
    if raw:
        return float(raw)
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = ServerSettings.from_env(model_dir=MODEL_DIR)
    except (TypeError, ValueError) as exc:
        print(f"error: a GITOPS_ML_* variable is invalid: {exc}", file=sys.stderr)
        return 2
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
        print(f"error: model directory {settings.model_dir} does not exist", file=sys.stderr)
        return 2
    files = ModelFiles.from_env()
    if not files.builtin and not (Path(settings.model_dir) / files.script).is_file():
        print(f"error: {Path(settings.model_dir) / files.script} does not exist", file=sys.stderr)
        return 2
    drain = args.drain_seconds if args.drain_seconds is not None else default_drain_seconds()
    try:
        run_server(settings, files=files, drain_seconds=drain, loop=None if args.loop == "auto" else args.loop)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())

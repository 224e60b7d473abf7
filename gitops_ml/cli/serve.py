"""`gitops-ml serve MODEL_DIR`: the image's scoring server, run locally on the model's files.

Settings come from the manifest, the environment's deployment file (--env), GITOPS_ML_* variables
and flags, in that order. On 127.0.0.1 auth is off unless a key is given (said loudly when the
deployment file asks for auth); elsewhere it follows the deployment file and needs a key. Capture
(when the deployment file enables it) goes to the user's cache, ~/.cache/gitops-ml/capture, unless
--capture-dir says otherwise: the deployment file's path is the image's volume, never written to
from a workstation. Unlike the image, a score.py that fails to load or init() stops serve.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from gitops_ml.cli._common import ENV_MANAGER_OPTION, echo_err, handle_errors, in_ci, progress_line
from gitops_ml.errors import LoadError, UsageError
from gitops_ml.repo.loading import parse_yaml
from gitops_ml.types import DEPLOYMENTS_DIR, DeploymentSpec, Kind, ManifestSpec, ModelSpec

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class ServeRequest:
    model_dir: Path
    env: str | None
    host: str
    port: int
    api_keys: tuple[str, ...]
    keys_dir: Path | None
    no_auth: bool
    batch: bool | None
    capture_dir: Path | None = None  # None: the user's cache
    api_key_files: tuple[Path, ...] = ()


def read_key_files(paths: tuple[Path, ...]) -> tuple[str, ...]:
    """The keys held by --api-key-file files (one key each, surrounding whitespace ignored)."""
    keys = []
    for path in paths:
        try:
            key = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the key file {path}: {getattr(exc, 'strerror', None) or exc}") from exc
        if not key or "\n" in key:
            raise UsageError(f"{path}: a key file holds one key on one line", hint="write the key alone into the file")
        keys.append(key)
    return tuple(keys)


def _spec(path: Path, kind: Kind) -> dict[str, object]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}", hint="MODEL_DIR is models/<model> of a gitops-ml repository") from exc
    data = parse_yaml(str(path), raw, kind).data
    if not isinstance(data, dict) or data.get("kind") != kind.value:
        raise LoadError(f"{path}: expected kind: {kind.value}", hint="run `gitops-ml validate` on the repository")
    return data


def make_settings(request: ServeRequest, warnings: list[str] | None = None):  # type: ignore[no-untyped-def]
    """(ServerSettings, ModelFiles) for the request; what the user should know is appended to `warnings`."""
    from gitops_ml.serving.settings import ServerSettings

    model_dir = request.model_dir
    if not model_dir.is_dir():
        raise UsageError(f"{model_dir} is not a directory")
    try:
        model = ModelSpec.from_doc(_spec(model_dir / "model.yaml", Kind.MODEL))
        manifest = ManifestSpec.from_doc(_spec(model_dir / "manifest.yaml", Kind.MANIFEST))
        deployment = None
        deployment_path = None
        if request.env:
            path = deployment_path = model_dir.resolve().parent.parent / DEPLOYMENTS_DIR / request.env / f"{model.name}.yaml"
            if not path.is_file():
                raise UsageError(f"no deployment file for model {model.name} in environment {request.env}: {path} does not exist")
            deployment = DeploymentSpec.from_doc(request.env, _spec(path, Kind.DEPLOYMENT))
    except (KeyError, TypeError, ValueError) as exc:
        raise LoadError(f"{model_dir}: invalid model files ({exc})", hint="run `gitops-ml validate` on the repository") from exc
    settings = ServerSettings.from_specs(model, manifest, deployment)
    try:
        settings = ServerSettings.from_env(**dataclasses.asdict(settings))
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid server setting: {exc}", hint="check the GITOPS_ML_* variables") from exc
    overrides: dict[str, object] = {
        "model_dir": str(model_dir.resolve()),
        "host": request.host,
        "port": request.port,
        "capture_dir": str(request.capture_dir or local_capture_dir()),
    }
    if request.keys_dir:
        overrides["keys_dir"] = str(request.keys_dir)
    if request.batch is not None:
        overrides["batch_enabled"] = request.batch
    local = request.host in LOCAL_HOSTS
    has_key = bool(request.api_keys) or request.keys_dir is not None
    if request.no_auth or (local and not has_key):
        if deployment is not None and deployment.auth.enabled and not request.no_auth and warnings is not None:
            warnings.append(
                f"{_shown(deployment_path)} sets auth.mode: {deployment.auth.mode}, but no key was given: serving WITHOUT AUTH "
                f"on {request.host}:{request.port}; anyone who reaches the port can score. Pass --api-key-file FILE or "
                "--keys-dir DIR to serve with auth as the environment does, or --no-auth to say you mean it"
            )
        overrides["auth_enabled"] = False
    elif settings.auth_enabled and not has_key:
        raise UsageError(
            f"auth is enabled and {request.host} is not a local address, but no key was given",
            hint="pass --api-key-file FILE or $GITOPS_ML_API_KEY (or --keys-dir DIR with files primary/secondary), or --no-auth",
        )
    elif has_key:
        overrides["auth_enabled"] = True
    settings = dataclasses.replace(settings, **overrides)  # type: ignore[arg-type]
    from gitops_ml.local.runner import model_files  # noqa: PLC0415

    files = model_files(model, manifest)
    if manifest.builtin and not (model_dir / files.artifact).exists():
        raise UsageError(f"{model_dir / files.artifact} does not exist", hint="the built-in scorer loads model.yaml's artifact; "
                         "a remote artifact is fetched by `gitops-ml build` (use run-image), or copy it into the model directory")
    if not manifest.builtin and not (model_dir / files.script).is_file():
        raise UsageError(f"{model_dir / files.script} does not exist", hint="the manifest's scoring.script names it")
    return settings, files


def _shown(path: Path | None) -> str:
    if path is None:
        return "the deployment file"
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def local_capture_dir() -> Path:
    """Where local serving captures when not told: the user's cache (XDG_CACHE_HOME honoured)."""
    from gitops_ml.adapters.artifacts import cache_root  # noqa: PLC0415 - imports httpx

    return cache_root() / "capture"


@click.command("serve")
@click.argument("model_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--env", "env", help="Environment whose deployments/<env>/<model>.yaml sets limits, auth, path prefix and telemetry.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port to listen on.")
@click.option(
    "--api-key-file", "api_key_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path), envvar="GITOPS_ML_API_KEY_FILE",
    help="File holding an accepted API key (repeatable; or $GITOPS_ML_API_KEY_FILE). Turns auth on. The way to pass a key: it stays out of the process list.",
)
@click.option(
    "--api-key", "api_keys", multiple=True, envvar="GITOPS_ML_API_KEY",
    help="Accepted API key (repeatable; or $GITOPS_ML_API_KEY, which other users cannot see). Turns auth on. "
    "A key on the command line is visible to every user of the machine in the process list (/proc/PID/cmdline): prefer --api-key-file or the variable.",
)
@click.option("--keys-dir", type=click.Path(file_okay=False, path_type=Path), help="Directory with key files primary/secondary, reloaded when they change.")
@click.option("--no-auth", is_flag=True, help="Require no key, whatever the deployment file says.")
@click.option("--batch/--no-batch", default=None, help="Override the manifest's scoring.batch.enabled.")
@click.option(
    "--capture-dir", type=click.Path(file_okay=False, path_type=Path), envvar="GITOPS_ML_CAPTURE_DIR",
    help="Where capture writes when the deployment file enables it (or $GITOPS_ML_CAPTURE_DIR; default ~/.cache/gitops-ml/capture).",
)
@click.option("--drain-seconds", type=float, default=0.0, show_default=True, help="After SIGTERM, keep serving this long with readiness false.")
@ENV_MANAGER_OPTION
@click.option("--reload", is_flag=True, help="Restart the server when score.py, the manifest, the schema or the artifact changes (for development).")
def command(
    model_dir: Path, env: str | None, host: str, port: int, api_key_files: tuple[Path, ...], api_keys: tuple[str, ...], keys_dir: Path | None,
    no_auth: bool, batch: bool | None, capture_dir: Path | None, drain_seconds: float, env_manager: str, reload: bool,
) -> None:
    """Serve MODEL_DIR (models/<model>) locally with the same server as the image. Ctrl+C stops it.

    By default the model runs in its own environment, made from its requirements and cached
    (--env-manager venv); --env-manager local runs it in this Python, and then exits non-zero with the
    located error when score.py cannot be imported or its init() fails (the image, and a venv server,
    stay up unready instead).
    """
    with handle_errors():
        keys = tuple(k for k in api_keys if k) + read_key_files(api_key_files)
        request = ServeRequest(model_dir, env, host, port, keys, keys_dir, no_auth, batch, capture_dir, api_key_files)
        warnings: list[str] = []
        settings, files = make_settings(request, warnings)
        from gitops_ml.serving.server import run_server

        for warning in warnings:
            echo_err(f"warning: {warning}")
        capture = ""
        if settings.capture_enabled and settings.capture_sampling > 0:
            capture = f"; capture to {settings.capture_dir} (sampling {settings.capture_sampling:g})"
            if settings.capture_sink_uri:
                capture += f", uploaded to {settings.capture_sink_uri}"
        prefix = settings.path_prefix

        def announce(bound: int) -> None:
            base = f"http://{host}:{bound}{prefix}"
            echo_err(
                f"serving {settings.model_name} {settings.model_version} on {base}"
                f" (auth {'on' if settings.auth_enabled else 'OFF'}{capture}; POST {prefix}/score; docs at {base}/docs, OpenAPI at {prefix}/swagger.json)"
            )

        if env_manager == "local" and not reload:
            run_server(settings, files=files, api_keys=request.api_keys, drain_seconds=drain_seconds, exit_on_init_failure=True, announce=announce)
            return
        python = Path(sys.executable)
        if env_manager == "venv":
            from gitops_ml.adapters.artifacts import cache_root  # noqa: PLC0415
            from gitops_ml.local.environment import ensure_environment  # noqa: PLC0415

            manifest = ManifestSpec.from_doc(_spec(model_dir / "manifest.yaml", Kind.MANIFEST))
            environment = ensure_environment(model_dir, manifest, cache=cache_root(), progress=progress_line, label=str(model_dir))
            if environment.created and not in_ci():
                echo_err(f"environment ready in {environment.seconds:.1f} s ({environment.installer})")
            python = environment.python
        from gitops_ml.local.runner import serve_in, serve_reloading  # noqa: PLC0415
        from gitops_ml.serving.server import bind  # noqa: PLC0415

        # the server runs in another process: take the port now, so a busy one is one error before
        # anything starts and port 0 is a real port, kept across reloads
        with bind(host, port) as probe:
            port = probe.getsockname()[1]
        request = dataclasses.replace(request, port=port)
        settings = dataclasses.replace(settings, port=port)
        announce(port)
        if reload:

            def prepare():  # type: ignore[no-untyped-def]
                fresh, model_files = make_settings(request)
                names = (model_files.script, model_files.schema, model_files.sample, model_files.output_schema, model_files.artifact, "manifest.yaml", "model.yaml")
                return fresh, model_files, [model_dir / name for name in names if name and (model_dir / name).is_file()]

            code = serve_reloading(python, prepare, request.api_keys, drain_seconds, echo_err)
        else:
            code = serve_in(python, settings, files, request.api_keys, drain_seconds, echo_err)
        if code not in (0, -15):
            raise SystemExit(code)

"""The MLflow tracking client: a `runs:/` or `models:/` URI resolved through the tracking server
(MLFLOW_TRACKING_URI) into a local copy of the model directory and what the server knows about it
(registered version, run, metrics). The only importer of MLflow's client; its errors become ours,
naming the URI. Loading a model is not done here (serving/builtins/mlflow.py does it in the image).
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from gitops_ml.errors import ConfigError, ExternalToolError, RegistryError

TRACKING_ENV = "MLFLOW_TRACKING_URI"
_MODELS = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>[^/]+))/?$")
_RUNS = re.compile(r"^runs:/(?P<run>[0-9a-zA-Z]+)/(?P<path>.+)$")


@dataclass(frozen=True)
class RemoteModel:
    """A model the tracking server handed over: where its copy is, and its provenance."""

    uri: str
    directory: Path
    run_id: str = ""
    registered_name: str = ""
    registered_version: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    tracking_uri: str = ""


def is_remote(source: str) -> bool:
    return source.startswith(("runs:/", "models:/"))


@contextlib.contextmanager
def _client_settings(tracking: str, registry: str) -> Iterator[None]:
    """MLflow's client reads some settings only from the environment: the server (a models:/ download
    asks the registry through it) and its retries, which by default go on for minutes against an
    unreachable server, where a command line should say so in seconds."""
    import mlflow  # noqa: PLC0415

    wanted = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
    saved = {key: os.environ.get(key) for key in wanted}
    for key, value in wanted.items():
        os.environ.setdefault(key, value)
    previous = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(registry)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)


def fetch_model(uri: str, dest: Path, env: Mapping[str, str] | None = None) -> RemoteModel:
    """Download the model at a runs:/ or models:/ URI into dest (which must exist and be empty)."""
    env = os.environ if env is None else env
    tracking = env.get(TRACKING_ENV, "")
    if not tracking:
        raise ConfigError(f"{uri}: {TRACKING_ENV} is not set, so there is no tracking server to resolve it",
                          hint=f"export {TRACKING_ENV}=http://mlflow.example.com (the server that holds the model), or import the model directory itself")
    models, runs = _MODELS.match(uri), _RUNS.match(uri)
    if models is None and runs is None:
        raise ConfigError(f"{uri!r} is not a runs:/RUN_ID/PATH or models:/NAME/VERSION (or models:/NAME@ALIAS) URI")
    try:
        import mlflow  # noqa: PLC0415 - the optional `mlflow` extra
        from mlflow.exceptions import MlflowException  # noqa: PLC0415
        from mlflow.tracking import MlflowClient  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigError("importing from an MLflow tracking server needs MLflow's client", hint="pip install 'gitops-ml[mlflow]'") from exc
    registry = env.get("MLFLOW_REGISTRY_URI") or tracking
    with _client_settings(tracking, registry):
        client = MlflowClient(tracking_uri=tracking, registry_uri=registry)
        try:
            name = version = ""
            if models is not None:
                name = models["name"]
                if models["alias"]:
                    found = client.get_model_version_by_alias(name, models["alias"])
                else:
                    found = client.get_model_version(name, models["version"])
                run_id, version = found.run_id or "", str(found.version)
            else:
                assert runs is not None
                run_id = runs["run"]
            metrics = dict(client.get_run(run_id).data.metrics) if run_id else {}
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest), tracking_uri=tracking)
        except MlflowException as exc:
            raise _error(uri, tracking, exc, client, models) from exc
        except OSError as exc:
            raise ExternalToolError(f"{uri}: cannot download the model from {tracking}: {exc}") from exc
    return RemoteModel(uri, Path(local), run_id, name, version, {k: float(v) for k, v in metrics.items()}, tracking)


def _error(uri: str, tracking: str, exc: Any, client: Any, models: Any) -> Exception:
    code = str(getattr(exc, "error_code", ""))
    message = str(getattr(exc, "message", exc)).splitlines()[0][:300]
    if code == "RESOURCE_DOES_NOT_EXIST" or "not found" in message.lower() or "does not exist" in message.lower():
        hint = ""
        if models is not None:
            hint = _known_versions(client, models["name"])
        return RegistryError(f"{uri}: the tracking server {tracking} has no such model: {message}", hint=hint)
    if any(word in message for word in ("Max retries", "Connection refused", "Failed to establish", "API request to", "NameResolution")):
        return ExternalToolError(f"{uri}: the tracking server {tracking} does not answer: {message}",
                                 hint=f"check {TRACKING_ENV} and that the server runs (and MLFLOW_TRACKING_TOKEN or credentials when it needs them)")
    return ExternalToolError(f"{uri}: the tracking server {tracking} refused: {message}")


def _known_versions(client: Any, name: str) -> str:
    try:
        versions = sorted((int(v.version) for v in client.search_model_versions(f"name='{name}'")))
    except Exception:  # noqa: BLE001 - only a hint: the first error is the one to report
        return ""
    if not versions:
        return f"no registered model named {name!r} has versions on that server"
    return f"registered versions of {name}: {', '.join(map(str, versions))}"

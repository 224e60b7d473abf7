"""`gitops-ml run-image`: start a model's image locally with an environment's settings, wait until
ready, score the sample, and stop it (or keep it running).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitops_ml.adapters.docker import DockerEngine
from gitops_ml.build.context import _put
from gitops_ml.build.plan import ImagePlan, Progress
from gitops_ml.errors import (
    ConfigError,
    DockerError,
    GitopsMlError,
    Location,
)

if TYPE_CHECKING:
    from gitops_ml.serving.settings import ServerSettings


@dataclass
class RunResult:
    """A local container's answer to the model's sample, and how to repeat the call."""

    model: str
    ref: str
    url: str
    status: int
    body: str
    curl: str
    container: str
    kept: bool
    keys_dir: str


def run_image(
    plan: ImagePlan,
    settings: ServerSettings,
    *,
    progress: Progress,
    keep: bool = False,
    host_port: int | None = None,
    timeout: float = 180.0,
) -> RunResult:
    """Start the image with settings and a fresh API key, wait for readiness, score the sample."""
    import secrets  # noqa: PLC0415

    from gitops_ml.adapters.endpoint import EndpointUnreachable, post_bytes  # noqa: PLC0415
    from gitops_ml.serving import settings as serving  # noqa: PLC0415

    manifest = plan.version.entry.manifest
    sample = plan.version.files().get(posixpath.normpath(manifest.sample)) if manifest.sample else None
    if sample is None:
        raise ConfigError(f"model {plan.model} has no sample in its manifest; run-image scores the sample", location=Location(f"{plan.model_dir}/manifest.yaml"))
    engine = DockerEngine.connect()
    container = None
    keys = Path(tempfile.mkdtemp(prefix=f"gitops-ml-keys-{plan.model}-"))
    try:
        if not engine.local_image_id(plan.ref):
            if engine.remote_digest(plan.ref) is None:
                raise DockerError(f"{plan.ref} is neither built here nor in its registry", hint=f"build it first: gitops-ml build --model {plan.model}")
            progress(f"pulling {plan.ref}")
            engine.pull(plan.ref, progress=progress)
        key = secrets.token_urlsafe(32)
        os.chmod(keys, 0o755)
        _put(keys / "primary", key.encode())
        tmpfs = {"/tmp": "mode=1777"}
        if settings.capture_enabled:
            tmpfs[settings.capture_dir] = "mode=1777"
        container = engine.run(plan.ref, env=settings.to_env(), port=settings.port, host_port=host_port, mounts={str(keys): settings.keys_dir}, tmpfs=tmpfs)
        base = f"http://127.0.0.1:{container.host_port}"
        progress(f"started {container.name} ({plan.ref}) on {base}; waiting for {serving.READINESS_PATH}")
        _wait_ready(engine, container.id, base + serving.READINESS_PATH, timeout, script=Location(f"{plan.model_dir}/{manifest.script}"))
        headers = {"Content-Type": "application/json"}
        if settings.auth_enabled:
            headers["Authorization"] = f"Bearer {key}"
        url = base + serving.SCORE_PATH
        status, text = post_bytes(url, sample, headers, timeout=max(30.0, settings.request_timeout * 2))
        auth = f" -H 'Authorization: Bearer {key}'" if settings.auth_enabled else ""
        curl = f"curl -sS -X POST {url}{auth} -H 'Content-Type: application/json' --data @{plan.model_dir}/{manifest.sample}"
        return RunResult(str(plan.model), plan.ref, url, status, text, curl, container.name, keep, str(keys))
    except EndpointUnreachable as exc:
        raise DockerError(f"the container of {plan.ref} did not answer: {exc}") from exc
    finally:
        if container is not None and not keep:
            engine.remove_container(container.id)
        if not keep:
            shutil.rmtree(keys, ignore_errors=True)
        engine.close()


def _wait_ready(engine: DockerEngine, container_id: str, url: str, timeout: float, *, script: Location) -> None:
    """Until /readyz answers 200; a failed init() (the server says so at once) stops the wait."""
    from gitops_ml.adapters.endpoint import probe  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while True:
        status, code = engine.container_state(container_id)
        if status in {"exited", "dead"}:
            logs = engine.container_logs(container_id)
            raise DockerError(f"the container exited with code {code} before it was ready", hint="its last output:\n" + logs.strip()[-2000:])
        answer = probe(url, timeout=2.0)
        if answer is not None:
            code, state = answer
            if code == 200:
                return
            if isinstance(state, dict) and state.get("status") == "failed":
                raise GitopsMlError(
                    f"init() failed in the container, which stays unready: {state.get('error', 'no reason given')}",
                    location=script,
                    hint="`gitops-ml serve` on the model directory shows the same failure with its traceback",
                )
        if time.monotonic() > deadline:
            logs = engine.container_logs(container_id)
            raise DockerError(f"the container was not ready within {timeout:.0f} s", hint="its last output:\n" + logs.strip()[-2000:])
        time.sleep(0.25)  # polling interval while init() loads the model, bounded by the deadline

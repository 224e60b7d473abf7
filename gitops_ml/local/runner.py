"""Start the scoring server, or score one request, in a model's environment: the same
`python -m gitops_ml.serving` the image runs, with the settings handed over as GITOPS_ML_* variables
(never keys on a command line: those go in files of a private directory).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from gitops_ml.errors import ExternalToolError, GitopsMlError
from gitops_ml.serving.model_files import ModelFiles
from gitops_ml.serving.settings import ServerSettings
from gitops_ml.types import ManifestSpec, ModelSpec


@dataclass(frozen=True)
class Scored:
    """What the scoring route answered in the model's environment; `error` when init() failed."""

    status: int
    body: bytes
    error: str = ""
    log: str = ""  # what the model's process said on stderr, kept when it failed to answer (5xx)


def model_files(model: ModelSpec, manifest: ManifestSpec) -> ModelFiles:
    """The files of a model directory the server reads, as the manifest names them."""
    from gitops_ml.serving.builtins.catalog import options_json  # noqa: PLC0415

    return ModelFiles(
        script=manifest.script,
        schema=manifest.schema or "schema.json",
        sample=manifest.sample or "sample.json",
        output_schema=manifest.output_schema,
        builtin=manifest.builtin,
        # locally the artifact is where model.yaml's uri says (the image puts it at artifact.path)
        artifact=model.artifact.uri if manifest.builtin and model.artifact.scheme == "path" else model.artifact.path,
        builtin_options=options_json(manifest.probabilities),
    )


def server_environment(settings: ServerSettings, files: ModelFiles) -> dict[str, str]:
    """The process environment of a server or predict run: this one's, plus the settings."""
    # the command line's own GITOPS_ML_* variables are already folded into `settings`; the rest are not the server's
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_ML_")}
    env.update(settings.to_env())
    env.update({"GITOPS_ML_SCRIPT": files.script, "GITOPS_ML_SCHEMA": files.schema, "GITOPS_ML_SAMPLE": files.sample,
                "GITOPS_ML_OUTPUT_SCHEMA": files.output_schema, "GITOPS_ML_BUILTIN": files.builtin, "GITOPS_ML_ARTIFACT": files.artifact,
                "GITOPS_ML_BUILTIN_OPTIONS": files.builtin_options})
    env.pop("PYTHONPATH", None)  # the environment's own packages, not this process's
    return env


def predict_in(python: Path, settings: ServerSettings, files: ModelFiles, body: bytes) -> Scored:
    """Score `body` with `python -m gitops_ml.serving.predict` of the model's environment."""
    # the body goes through stdin (no file left behind); the child dies with this process
    proc = subprocess.Popen([str(python), "-m", "gitops_ml.serving.predict", "--data", "-"], env=server_environment(settings, files),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_pdeathsig())
    with _sigterm_interrupts():
        try:
            out, err = proc.communicate(body)
        except KeyboardInterrupt:
            proc.kill()
            proc.wait()
            raise
    if proc.returncode == 4:
        message = err.decode("utf-8", "replace").strip().splitlines()
        return Scored(0, b"", (message[-1] if message else "init() failed").removeprefix("error: "))
    status, _, answer = out.partition(b"\n")
    if proc.returncode != 0 or not status.isdigit():
        raise ExternalToolError(
            f"the model's environment could not score: {err.decode('utf-8', 'replace').strip()[-1500:] or f'exit code {proc.returncode}'}",
            hint="rerun with --env-manager local to see the failure in this process",
        )
    failed = int(status) >= 500
    return Scored(int(status), answer.rstrip(b"\n"), log=err.decode("utf-8", "replace").strip() if failed else "")


def serve_in(python: Path, settings: ServerSettings, files: ModelFiles, api_keys: tuple[str, ...], drain_seconds: float,
             on_event: Callable[[str], None]) -> int:
    """Run the server in the model's environment until it stops; its exit code (1, said through
    `on_event`, when it stopped by itself)."""
    env = {**server_environment(settings, files), "GITOPS_ML_DRAIN_SECONDS": str(drain_seconds)}
    proc = _start_server(python, env, api_keys)
    with _sigterm_interrupts():
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            proc.terminate()  # the server drains and stops on SIGTERM, as in a pod
            return proc.wait()
    if code != 0:
        on_event(f"error: the model's server stopped by itself (exit code {code}); its log is above")
        return 1
    return 0


def _start_server(python: Path, env: dict[str, str], api_keys: tuple[str, ...]) -> "subprocess.Popen[bytes]":
    """`python -m gitops_ml.serving`, which Linux stops (SIGTERM, so it drains) if this process dies
    without stopping it: a killed `gitops-ml serve` leaves no server holding the port. The keys go
    through a pipe (never a command line, never a file: nothing of them outlives the processes)."""
    if not api_keys:
        return subprocess.Popen([str(python), "-m", "gitops_ml.serving"], env=env, preexec_fn=_pdeathsig())
    read, write = os.pipe()
    try:
        os.write(write, "".join(f"{key}\n" for key in api_keys).encode())  # a few keys fit the pipe's buffer
    finally:
        os.close(write)
    try:
        return subprocess.Popen([str(python), "-m", "gitops_ml.serving"], env={**env, "GITOPS_ML_KEYS_FD": str(read), "GITOPS_ML_AUTH_ENABLED": "true"},
                                preexec_fn=_pdeathsig(), pass_fds=(read,))
    finally:
        os.close(read)


def _pdeathsig() -> Callable[[], None] | None:
    return _die_with_parent if sys.platform == "linux" else None


def _die_with_parent() -> None:
    import ctypes  # noqa: PLC0415 - in the child, between fork and exec

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM to this process stops the server as Ctrl+C does (the server drains, then both exit),
    instead of killing this process and leaving the server running."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():  # only the main thread takes signals
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


Prepared = tuple[ServerSettings, ModelFiles, list[Path]]  # settings, files, the files a change of restarts it


def serve_reloading(python: Path, prepare: Callable[[], Prepared], api_keys: tuple[str, ...], drain_seconds: float,
                    on_event: Callable[[str], None]) -> int:
    """Run the server in the model's environment, and restart it whenever one of its files changes
    (score.py, the manifest, the schema, the artifact, model.yaml), with the settings and files
    `prepare` reads again; a stopped server finishes what it accepted. Settings that no longer load
    are said, and the running server is kept until they do."""
    import watchfiles  # noqa: PLC0415 - only --reload watches files

    settings, files, watched = prepare()
    with _sigterm_interrupts():
        def environment() -> dict[str, str]:
            return {**server_environment(settings, files), "GITOPS_ML_DRAIN_SECONDS": str(drain_seconds)}

        proc = _start_server(python, environment(), api_keys)
        exited = False
        roots = {p.resolve().parent for p in watched}
        try:
            for changes in watchfiles.watch(*roots, rust_timeout=1000, yield_on_timeout=True):
                targets = {str(p.resolve()) for p in watched}
                changed = sorted({path for _, path in changes if path in targets})
                if not changed:
                    if proc.poll() is not None and not exited:
                        exited = True
                        on_event(f"the model's server exited (exit code {proc.returncode}); it starts again at the next change of its files")
                    continue
                on_event(f"reloading: {', '.join(changed)} changed")
                try:
                    settings, files, watched = prepare()
                except GitopsMlError as exc:
                    on_event(f"error: {exc}; the server keeps running with the files it loaded")
                    continue
                proc.terminate()
                proc.wait()
                proc = _start_server(python, environment(), api_keys)
                exited = False
        except KeyboardInterrupt:
            pass
        proc.terminate()
        return proc.wait()

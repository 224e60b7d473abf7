"""The Docker Engine, through the `docker` package: the only module that imports it.

Builds, pushes, pulls, runs containers and asks registries whether a reference exists (distribution
inspect). Every docker-py or engine error becomes a DockerError with a hint a user can act on; build
and push streams are turned into plain progress lines for the caller.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import docker
import docker.errors
import requests.exceptions

from gitops_ml.errors import DockerError

Progress = Callable[[str], None]

START_HINT = (
    "start a Docker engine (`sudo systemctl start docker`, or `sudo setsid dockerd &` on a machine without "
    "systemd) or point DOCKER_HOST at one"
)
_AUTH = re.compile(r"unauthorized|authentication required|no basic auth credentials|denied|forbidden|401|403", re.I)
_UNREACHABLE = re.compile(r"connection refused|no such host|i/o timeout|dial tcp|server gave HTTP response|tls", re.I)


def registry_hint(ref: str, message: str) -> str:
    host = ref.split("/", 1)[0]
    if _AUTH.search(message):
        return f"log in first: `docker login {host}` (the engine's credentials are used)"
    if _UNREACHABLE.search(message):
        return f"is the registry {host} running and reachable from the Docker engine? (a plain-HTTP registry must be listed in the engine's insecure-registries unless it is on 127.0.0.0/8)"
    return ""


@dataclass
class PushReport:
    """What a push sent: the manifest digest and the compressed bytes of layers actually uploaded."""

    digest: str = ""
    bytes_pushed: int = 0
    layers_pushed: int = 0
    layers_existing: int = 0
    sizes: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    host_port: int


class DockerEngine:
    """A connection to one Docker engine (DOCKER_HOST or the default socket)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._api = client.api

    @classmethod
    def connect(cls, *, timeout: int = 600) -> "DockerEngine":
        _probe_socket()
        client = None
        try:
            client = docker.from_env(timeout=timeout)
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            if client is not None:
                client.close()
            raise DockerError(f"cannot reach the Docker engine: {_short(exc)}", hint=START_HINT) from exc
        return cls(client)

    def close(self) -> None:
        self._client.close()

    # --- images --------------------------------------------------------------------------

    def local_image_id(self, ref: str) -> str | None:
        try:
            return str(self._api.inspect_image(ref)["Id"])
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.APIError as exc:
            raise DockerError(f"cannot inspect image {ref}: {_short(exc)}") from exc

    def remote_digest(self, ref: str) -> str | None:
        """The manifest digest of ref in its registry, None when the registry does not have it."""
        try:
            info = self._api.inspect_distribution(ref)
        except docker.errors.APIError as exc:
            message = _short(exc)
            if exc.status_code == 404 or "manifest unknown" in message:
                return None
            raise DockerError(f"cannot ask the registry about {ref}: {message}", hint=registry_hint(ref, message)) from exc
        except requests.exceptions.RequestException as exc:
            raise DockerError(f"lost the Docker engine: {_short(exc)}", hint=START_HINT) from exc
        return str(info.get("Descriptor", {}).get("digest", "")) or None

    def image_info(self, ref: str) -> dict[str, Any]:
        """The engine's inspection of a local image (Id, Architecture, Os, Config, RootFS)."""
        try:
            return dict(self._api.inspect_image(ref))
        except docker.errors.APIError as exc:
            raise DockerError(f"cannot inspect image {ref}: {_short(exc)}") from exc

    def engine_id(self) -> str:
        try:
            return str(self._api.info().get("ID", "")) or "unknown"
        except docker.errors.APIError as exc:
            raise DockerError(f"cannot ask the Docker engine about itself: {_short(exc)}") from exc

    def read_image_files(self, ref: str, paths: list[str]) -> dict[str, bytes | None]:
        """The contents of files in a local image (None for a path it does not have), from a container
        that is created, never started, and removed."""
        import io  # noqa: PLC0415
        import tarfile  # noqa: PLC0415

        out: dict[str, bytes | None] = {}
        try:
            container = self._api.create_container(ref, command=["/bin/true"], entrypoint=[])
        except docker.errors.APIError as exc:
            raise DockerError(f"cannot read files of image {ref}: {_short(exc)}") from exc
        try:
            for path in paths:
                try:
                    stream, _ = self._api.get_archive(container["Id"], path)
                except docker.errors.NotFound:
                    out[path] = None
                    continue
                with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                    member = tar.next()
                    if member is not None and member.issym():
                        out[path] = b"->" + member.linkname.encode()
                        continue
                    handle = tar.extractfile(member) if member is not None else None
                    out[path] = handle.read() if handle is not None else b""
        except docker.errors.APIError as exc:
            raise DockerError(f"cannot read files of image {ref}: {_short(exc)}") from exc
        finally:
            self.remove_container(container["Id"])
        return out

    def load(self, archive: Iterable[bytes], *, progress: Progress) -> None:
        """`docker load` of an image archive (the docker-save layout, streamed); tags come from its manifest.json."""
        try:
            for event in self._api.load_image(archive, quiet=False):
                if "error" in event:
                    raise DockerError(f"docker load failed: {str(event['error']).strip()}")
                text = str(event.get("stream", "")).strip()
                if text:
                    progress(text)
        except docker.errors.APIError as exc:
            raise DockerError(f"docker load failed: {_short(exc)}") from exc
        except requests.exceptions.RequestException as exc:
            raise DockerError(f"lost the Docker engine while loading an image: {_short(exc)}", hint=START_HINT) from exc

    def image_labels(self, ref: str) -> dict[str, str]:
        info = self._api.inspect_image(ref)
        return dict(info.get("Config", {}).get("Labels") or {})

    def image_size(self, ref: str) -> int:
        return int(self._api.inspect_image(ref)["Size"])

    def image_layers(self, ref: str) -> list[str]:
        return list(self._api.inspect_image(ref).get("RootFS", {}).get("Layers") or [])

    def repo_digest(self, ref: str) -> str:
        repo = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
        for item in self._api.inspect_image(ref).get("RepoDigests") or []:
            if item.startswith(repo + "@"):
                return str(item.split("@", 1)[1])
        return ""

    def remove_image(self, ref: str) -> None:
        try:
            self._api.remove_image(ref, force=True, noprune=False)
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            raise DockerError(f"cannot remove image {ref}: {_short(exc)}") from exc

    def build(self, context: Path, tag: str, *, progress: Progress, buildargs: Mapping[str, str] | None = None, nocache: bool = False) -> str:
        """Build context/Dockerfile, tag it, return the image id; failures leave no tag behind."""
        image_id = ""
        last_lines: list[str] = []
        try:
            stream = self._api.build(
                path=str(context), tag=tag, rm=True, forcerm=True, decode=True, pull=False, buildargs=dict(buildargs or {}),
                nocache=nocache,
            )
            for event in stream:
                if "error" in event:
                    detail = str(event.get("error", "")).strip()
                    raise DockerError(f"docker build of {tag} failed: {detail}", hint=_build_hint(detail, last_lines))
                text = str(event.get("stream", "")).rstrip()
                for line in text.splitlines():
                    if line.strip():
                        last_lines = (last_lines + [line])[-20:]
                        progress(line)
                aux = event.get("aux")
                if isinstance(aux, dict) and "ID" in aux:
                    image_id = str(aux["ID"])
        except docker.errors.APIError as exc:
            detail = _short(exc)
            raise DockerError(f"docker build of {tag} failed: {detail}", hint=_build_hint(detail, last_lines)) from exc
        except requests.exceptions.RequestException as exc:
            raise DockerError(f"lost the Docker engine during the build of {tag}: {_short(exc)}", hint=START_HINT) from exc
        if not image_id:
            image_id = self.local_image_id(tag) or ""
        if not image_id:
            raise DockerError(f"docker build of {tag} finished without an image")
        return image_id

    def push(self, ref: str, *, progress: Progress) -> PushReport:
        repository, tag = _split(ref)
        report = PushReport()
        pushed: set[str] = set()
        announced: set[str] = set()
        try:
            for event in self._api.push(repository, tag=tag, stream=True, decode=True):
                if "error" in event:
                    message = str(event["error"]).strip()
                    raise DockerError(f"push of {ref} failed: {message}", hint=registry_hint(ref, message))
                layer, status = str(event.get("id", "")), str(event.get("status", ""))
                detail = event.get("progressDetail") or {}
                if status == "Pushing" and detail.get("total"):
                    report.sizes[layer] = max(report.sizes.get(layer, 0), int(detail["total"]))
                    if layer not in announced:
                        announced.add(layer)
                        progress(f"pushing layer {layer} ({_human(int(detail['total']))})")
                elif status == "Pushed":
                    pushed.add(layer)
                    progress(f"pushed layer {layer}")
                elif status == "Layer already exists":
                    report.layers_existing += 1
                    progress(f"layer {layer} already in the registry")
                aux = event.get("aux")
                if isinstance(aux, dict) and aux.get("Digest"):
                    report.digest = str(aux["Digest"])
        except docker.errors.APIError as exc:
            message = _short(exc)
            raise DockerError(f"push of {ref} failed: {message}", hint=registry_hint(ref, message)) from exc
        except requests.exceptions.RequestException as exc:
            raise DockerError(f"lost the Docker engine during the push of {ref}: {_short(exc)}", hint=START_HINT) from exc
        report.layers_pushed = len(pushed)
        # the engine reports the compressed size only while uploading; tiny layers may skip "Pushing"
        report.bytes_pushed = sum(report.sizes.get(layer, 0) for layer in pushed)
        return report

    def pull(self, ref: str, *, progress: Progress) -> None:
        repository, tag = _split(ref)
        try:
            for event in self._api.pull(repository, tag=tag, stream=True, decode=True):
                if "error" in event:
                    message = str(event["error"]).strip()
                    raise DockerError(f"pull of {ref} failed: {message}", hint=registry_hint(ref, message))
                if event.get("status") in {"Pull complete", "Already exists"}:
                    progress(f"{event['status'].lower()}: layer {event.get('id', '')}")
        except docker.errors.APIError as exc:
            message = _short(exc)
            raise DockerError(f"pull of {ref} failed: {message}", hint=registry_hint(ref, message)) from exc

    # --- containers ----------------------------------------------------------------------

    def run(
        self,
        ref: str,
        *,
        env: Mapping[str, str],
        port: int,
        host_port: int | None = None,
        mounts: Mapping[str, str] | None = None,
        tmpfs: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> Container:
        """Start ref detached with `port` published on 127.0.0.1 (a free port unless host_port)."""
        volumes = {src: {"bind": dst, "mode": "ro"} for src, dst in (mounts or {}).items()}
        container = None
        try:
            # created, then started: a start that fails (a port already taken) leaves no container behind
            container = self._client.containers.create(
                ref,
                environment=dict(env),
                ports={f"{port}/tcp": ("127.0.0.1", host_port)},
                volumes=volumes,
                tmpfs=dict(tmpfs or {}),
                read_only=True,
                name=name,
                auto_remove=False,
            )
            container.start()
            container.reload()
            binding = container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"][0]
        except docker.errors.APIError as exc:
            if container is not None:
                self.remove_container(container.id)
            hint = "another process or container holds that port; pick another with --port" if "port is already allocated" in str(exc) else ""
            raise DockerError(f"cannot start a container of {ref}: {_short(exc)}", hint=hint) from exc
        return Container(container.id, container.name, int(binding["HostPort"]))

    def container_state(self, container_id: str) -> tuple[str, int]:
        """(status, exit code) of a container."""
        attrs = self._api.inspect_container(container_id)["State"]
        return str(attrs.get("Status", "")), int(attrs.get("ExitCode", 0))

    def container_logs(self, container_id: str, tail: int = 40) -> str:
        try:
            return bytes(self._api.logs(container_id, tail=tail)).decode("utf-8", "replace")
        except docker.errors.APIError:
            return ""

    def remove_container(self, container_id: str) -> None:
        try:
            self._api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            raise DockerError(f"cannot remove container {container_id[:12]}: {_short(exc)}") from exc


def _probe_socket() -> None:
    """Fail fast on a missing Unix socket (docker-py would leak its socket on that path)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        return
    path = host[len("unix://"):]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(path)
        except OSError as exc:
            raise DockerError(f"cannot reach the Docker engine at {host}: {exc.strerror or exc}", hint=START_HINT) from exc


def _split(ref: str) -> tuple[str, str]:
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = ref.rsplit(":", 1)
        return repository, tag
    return ref, "latest"


def _short(exc: BaseException) -> str:
    if isinstance(exc, docker.errors.APIError) and exc.explanation:
        return str(exc.explanation).strip()
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]


def _build_hint(detail: str, last_lines: list[str]) -> str:
    if re.search(r"pull access denied|repository does not exist|manifest unknown|not found: manifest", detail, re.I):
        return ("the base image does not exist locally or in its registry: pass one with python3 and python3-venv with --base-image "
                "(from Debian: `mmdebstrap --variant=apt --include=python3,python3-venv bookworm base.tar && docker import base.tar python-base:bookworm`)")
    if last_lines:
        return "last build output:\n  " + "\n  ".join(last_lines[-8:])
    return ""


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


"""OCI registry access for what is pushed next to an image (SBOM, provenance): artifacts that refer to
the image through their `subject`, listed through the OCI 1.1 referrers API, or through the referrers
tag schema (`<alg>-<hex>` index tags) on registries without it, such as distribution 2.8.

The only module that talks to registries over HTTP; requests go through ORAS's client (its auth reads
the Docker credentials, DOCKER_CONFIG honoured). Its errors become RegistryAccessError.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from gitops_ml.errors import ConfigError, DockerError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
MANIFEST_TYPES = ", ".join([OCI_MANIFEST, OCI_INDEX, "application/vnd.docker.distribution.manifest.v2+json",
                            "application/vnd.docker.distribution.manifest.list.v2+json"])
TITLE = "org.opencontainers.image.title"


class RegistryAccessError(DockerError):
    """Raised when a registry refuses or fails a request for an image's referrers."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    artifact_type: str = ""
    annotations: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Descriptor":
        return cls(str(data.get("mediaType", "")), str(data["digest"]), int(data.get("size", 0)), str(data.get("artifactType", "")),
                   dict(data.get("annotations") or {}))


@dataclass(frozen=True)
class Referrers:
    """The artifacts that refer to a manifest, and how the registry was asked ("api" or "tag-schema")."""

    via: str
    items: tuple[Descriptor, ...]


def split_ref(ref: str) -> tuple[str, str, str]:
    """(registry host, repository, tag or digest) of an image reference."""
    host, _, rest = ref.partition("/")
    if "@" in rest:
        repository, _, reference = rest.partition("@")
    elif ":" in rest.rsplit("/", 1)[-1]:
        repository, _, reference = rest.rpartition(":")
    else:
        repository, reference = rest, "latest"
    return host, repository, reference


class Registry:
    """One registry host, reached over HTTPS (plain HTTP on 127.0.0.0/8 and localhost, as Docker does)."""

    def __init__(self, host: str) -> None:
        try:
            import oras.provider  # noqa: PLC0415 - an optional extra
        except ImportError as exc:
            raise ConfigError("SBOM and provenance referrers are pushed with ORAS", hint="pip install 'gitops-ml[oci]'") from exc
        self.host = host
        insecure = host.startswith(("127.", "localhost"))
        self._scheme = "http" if insecure else "https"
        # ORAS's default backend takes any challenge for a token service; an htpasswd registry asks for Basic
        backend = self._challenge()
        self._basic = backend == "basic"
        self._client = oras.provider.Registry(hostname=host, insecure=insecure, auth_backend=backend)
        self._loaded: set[str] = set()

    def _challenge(self) -> str:
        import requests  # noqa: PLC0415 - ORAS's own HTTP library

        try:
            response = requests.get(f"{self._scheme}://{self.host}/v2/", timeout=30)
        except requests.RequestException as exc:
            raise RegistryAccessError(f"cannot reach the registry {self.host}: {exc}",
                                      hint=f"is the registry {self.host} running and reachable from here?") from exc
        challenge = str(response.headers.get("WWW-Authenticate", ""))
        return "basic" if response.status_code == 401 and challenge.lower().startswith("basic") else "token"

    def _auth(self, repository: str) -> None:
        if repository in self._loaded:
            return
        config = os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"), "config.json")
        container = self._client.get_container(f"{self.host}/{repository}:latest")
        self._client.auth.load_configs(container, configs=[config] if os.path.isfile(config) else None)
        if self._basic and not getattr(self._client.auth, "_basic_auth", None):
            raise RegistryAccessError(f"the registry {self.host} wants a user name and password, and the Docker configuration has none for it",
                                      hint=f"log in first: `docker login {self.host}`")
        self._loaded.add(repository)

    def _request(self, method: str, repository: str, path: str, *, data: bytes | None = None, headers: dict[str, str] | None = None,
                 url: str = "") -> Any:
        self._auth(repository)
        target = url or f"{self._scheme}://{self.host}/v2/{repository}/{path}"
        try:
            return self._client.do_request(target, method, data=data, headers=dict(headers or {}))
        except Exception as exc:  # noqa: BLE001 - ORAS raises plain exceptions and requests errors
            raise RegistryAccessError(f"registry {self.host}: {method} {path} failed: {exc}",
                                      hint=f"log in first (`docker login {self.host}`) or check that the registry is reachable") from exc

    def _check(self, response: Any, what: str) -> None:
        if response.status_code >= 300:
            raise RegistryAccessError(f"registry {self.host}: {what}: HTTP {response.status_code} {response.text[:300]}",
                                      hint=f"log in first: `docker login {self.host}`" if response.status_code in (401, 403) else "")

    # --- reading ---------------------------------------------------------------------------------

    def manifest(self, repository: str, reference: str) -> tuple[bytes, Descriptor] | None:
        """A manifest's bytes and descriptor, None when the registry does not have it."""
        response = self._request("GET", repository, f"manifests/{reference}", headers={"Accept": MANIFEST_TYPES})
        if response.status_code == 404:
            return None
        self._check(response, f"manifest {repository}:{reference}")
        body = bytes(response.content)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        media = str(response.headers.get("Content-Type", "")).split(";")[0] or str(json.loads(body).get("mediaType", ""))
        return body, Descriptor(media, digest, len(body))

    def blob(self, repository: str, digest: str) -> bytes:
        response = self._request("GET", repository, f"blobs/{digest}")
        self._check(response, f"blob {digest}")
        data = bytes(response.content)
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise RegistryAccessError(f"registry {self.host}: blob {digest} does not match its digest")
        return data

    def referrers(self, repository: str, subject: str) -> Referrers:
        """The referrers of subject: the OCI 1.1 API when the registry has it, else the tag schema."""
        response = self._request("GET", repository, f"referrers/{subject}", headers={"Accept": OCI_INDEX})
        if response.status_code == 200 and str(response.headers.get("Content-Type", "")).startswith(OCI_INDEX):
            return Referrers("api", tuple(Descriptor.from_json(m) for m in response.json().get("manifests") or []))
        found = self.manifest(repository, _fallback_tag(subject))
        if found is None:
            return Referrers("tag-schema", ())
        return Referrers("tag-schema", tuple(Descriptor.from_json(m) for m in json.loads(found[0]).get("manifests") or []))

    # --- writing ---------------------------------------------------------------------------------

    def put_blob(self, repository: str, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        head = self._request("HEAD", repository, f"blobs/{digest}")
        if head.status_code == 200:
            return digest
        start = self._request("POST", repository, "blobs/uploads/")
        self._check(start, "starting a blob upload")
        location = str(start.headers["Location"])
        if location.startswith("/"):
            location = f"{self._scheme}://{self.host}{location}"
        url = f"{location}{'&' if '?' in location else '?'}digest={digest}"
        done = self._request("PUT", repository, "", data=data, headers={"Content-Type": "application/octet-stream"}, url=url)
        self._check(done, f"uploading blob {digest}")
        return digest

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> Any:
        response = self._request("PUT", repository, f"manifests/{reference}", data=body, headers={"Content-Type": media_type})
        self._check(response, f"manifest {repository}:{reference}")
        return response

    def push_referrer(self, repository: str, subject: Descriptor, artifact_type: str, payload: bytes, payload_type: str,
                      filename: str, annotations: dict[str, str]) -> Descriptor:
        """Push payload as an artifact whose subject is the image, and list it where clients look.

        A registry that answers the manifest PUT without `OCI-Subject` has no referrers API: the
        `sha256-<hex>` index tag is updated as the OCI 1.1 distribution spec asks of clients.
        """
        empty = b"{}"
        self.put_blob(repository, empty)
        layer_digest = self.put_blob(repository, payload)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": EMPTY_CONFIG, "digest": "sha256:" + hashlib.sha256(empty).hexdigest(), "size": 2, "data": "e30="},
            "layers": [{"mediaType": payload_type, "digest": layer_digest, "size": len(payload), "annotations": {TITLE: filename}}],
            "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
            "annotations": dict(annotations),
        }
        body = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode("utf-8")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        response = self.put_manifest(repository, digest, body, OCI_MANIFEST)
        descriptor = Descriptor(OCI_MANIFEST, digest, len(body), artifact_type, dict(annotations))
        if not response.headers.get("OCI-Subject"):
            self._add_to_fallback_index(repository, subject.digest, descriptor)
        return descriptor

    def _add_to_fallback_index(self, repository: str, subject: str, descriptor: Descriptor) -> None:
        tag = _fallback_tag(subject)
        found = self.manifest(repository, tag)
        index: dict[str, Any] = json.loads(found[0]) if found else {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        manifests = [m for m in index.get("manifests") or [] if m.get("digest") != descriptor.digest]
        index["manifests"] = [*manifests, descriptor.as_json()]
        self.put_manifest(repository, tag, json.dumps(index, sort_keys=True, separators=(",", ":")).encode("utf-8"), OCI_INDEX)


def _fallback_tag(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}"

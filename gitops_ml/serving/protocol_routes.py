"""The inference protocols' routes beside /score: Open Inference Protocol (`/v2/...`) and KServe V1
(`/v1/models/...`). Parses their paths, checks the model name and version in them against the
endpoint's, answers their metadata and readiness, and gives each scoring request a `Call` that decodes
its body and shapes its answer. The scoring itself (keys, admission, run(), metrics, capture) is
app.py's, the same as for /score.

The name in the paths is the endpoint's model name; the version is the one it serves, or its MAJOR
number (a schema-compatible rollout keeps it), so a client's URL outlives rollouts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gitops_ml import __version__
from gitops_ml.serving.bodies import Decoded, Refusal
from gitops_ml.serving.decoding import RequestDecoder
from gitops_ml.serving.kserve_v1 import V1Layout, predictions
from gitops_ml.serving.oip import HEADER_LENGTH, Layout, Request, protocol_error, reshape_error

OCTET = b"application/octet-stream"
JSON = b"application/json"
OIP_EXTENSIONS = ["binary_tensor_data"]
# what a Triton model configuration says of a datatype (perf_analyzer reads /config)
_CONFIG_TYPES = {"BOOL": "TYPE_BOOL", "BYTES": "TYPE_STRING"}


@dataclass(frozen=True)
class Route:
    """A parsed protocol path: what it asks (`kind`), and the model name and version it names."""

    kind: str  # server, live, ready, metadata, model_ready, config, infer, v1_ready, v1_predict
    name: str = ""
    version: str = ""


def parse_route(path: str) -> Route | None:
    """The protocol route of `path`, or None when it is not one."""
    if path.startswith("/v1/models/"):
        rest = path[len("/v1/models/") :]
        if rest.endswith(":predict"):
            return Route("v1_predict", rest[: -len(":predict")])
        return Route("v1_ready", rest) if rest and "/" not in rest and ":" not in rest else None
    if path in ("/v2", "/v2/"):
        return Route("server")
    if path == "/v2/health/live":
        return Route("live")
    if path == "/v2/health/ready":
        return Route("ready")
    if not path.startswith("/v2/models/"):
        return None
    parts = path[len("/v2/models/") :].split("/")
    name, version = parts[0], ""
    if len(parts) >= 3 and parts[1] == "versions":
        version, parts = parts[2], [name, *parts[3:]]
    if not name or any(not part for part in parts):
        return None
    if len(parts) == 1:
        return Route("metadata", name, version)
    if len(parts) == 2 and parts[1] in ("ready", "infer", "config"):
        return Route({"ready": "model_ready", "infer": "infer", "config": "config"}[parts[1]], name, version)
    return None


class Protocols:
    """The protocols of one endpoint: its tensor layout and the answers that never change."""

    def __init__(
        self,
        *,
        model: str,
        version: str,
        schema: dict[str, Any],
        decoder: RequestDecoder,
        output_schema: Any,
        platform: str,
    ) -> None:
        self.model = model
        self.version = version
        self.major = version.split(".", 1)[0]
        self.layout = Layout.from_schema(schema, decoder, output_schema)
        self.v1 = V1Layout(decoder)
        inputs = self.layout.inputs_metadata()
        metadata: dict[str, Any] = {
            "name": model,
            "versions": [self.major, version] if self.major != version else [version],
            "platform": platform,
            "inputs": inputs,
            "outputs": list(self.layout.outputs),
        }
        if self.layout.frames:
            metadata["parameters"] = {"content_type": "pd"}  # MLServer's pandas codec: one tensor per column
        self.metadata = orjson.dumps(metadata)
        self.server = orjson.dumps({"name": "gitops-ml", "version": __version__, "extensions": OIP_EXTENSIONS})
        self.config = orjson.dumps(
            {
                "name": model,
                "platform": platform,
                "backend": "python",
                "max_batch_size": 0,
                "input": [_config_tensor(t) for t in inputs],
                "output": [_config_tensor(t) for t in self.layout.outputs],
            }
        )

    def serves(self, route: Route) -> bool:
        """Whether the model name and version in the path are this endpoint's."""
        return (not route.name or route.name == self.model) and (
            not route.version or route.version in (self.version, self.major)
        )

    def unknown(self, route: Route, request_id: str) -> bytes | None:
        """The 404 body when the path names another model or version than this endpoint's, else None."""
        if route.name and route.name != self.model:
            return protocol_error(
                f"unknown model {route.name!r}: this endpoint serves {self.model!r}", request_id, code="model_not_found"
            )
        if route.version and route.version not in (self.version, self.major):
            return protocol_error(
                f"unknown version {route.version!r} of {self.model!r}: this endpoint serves {self.version} (also reachable as {self.major})",
                request_id,
                code="version_not_found",
            )
        return None

    def call(self, route: Route, headers: list[tuple[bytes, bytes]]) -> "Call":
        """The decoder and answer-shaper of one scoring request on `route`."""
        if route.kind == "v1_predict":
            return V1Call(self)
        length: int | None = None
        for name, value in headers:
            if name == HEADER_LENGTH.encode():
                length = int(value) if value.isdigit() else -1
        return OipCall(self, length)


class Call:
    """One protocol scoring request: decodes its body, shapes the /score answer into the protocol's."""

    def decode(self, raw: bytes, request_id: str) -> Decoded | Refusal:
        raise NotImplementedError

    def answer(self, status: int, body: bytes) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
        """(status, body, content type, extra headers) the client gets for a /score (status, body)."""
        raise NotImplementedError


class OipCall(Call):
    def __init__(self, protocols: Protocols, header_length: int | None) -> None:
        self.protocols = protocols
        self.header_length = header_length
        self.request = Request()

    def decode(self, raw: bytes, request_id: str) -> Decoded | Refusal:
        if self.header_length is not None and self.header_length < 0:
            return Refusal(400, protocol_error("Inference-Header-Content-Length must be a number of bytes", request_id))
        decoded, self.request = self.protocols.layout.decode(raw, self.header_length, request_id)
        return decoded

    def answer(self, status: int, body: bytes) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
        if status != 200:
            status, body = reshape_error(body, status)
            return status, body, JSON, []
        protocols = self.protocols
        reply, length = protocols.layout.answer(body, self.request, protocols.model, protocols.version)
        if length is None:
            return 200, reply, JSON, []
        return 200, reply, OCTET, [(b"inference-header-content-length", b"%d" % length)]


class V1Call(Call):
    def __init__(self, protocols: Protocols) -> None:
        self.protocols = protocols

    def decode(self, raw: bytes, request_id: str) -> Decoded | Refusal:
        return self.protocols.v1.decode(raw, request_id)

    def answer(self, status: int, body: bytes) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
        if status != 200:
            status, body = reshape_error(body, status)
            return status, body, JSON, []
        return 200, predictions(body), JSON, []


def _config_tensor(tensor: dict[str, Any]) -> dict[str, Any]:
    datatype = tensor["datatype"]
    return {
        "name": tensor["name"],
        "data_type": _CONFIG_TYPES.get(datatype, "TYPE_" + datatype),
        "dims": tensor["shape"],
    }

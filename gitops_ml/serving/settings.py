"""Runtime settings of the scoring server, and their environment-variable contract.

`render` writes `to_env()` into each endpoint's ConfigMap; the server reads `from_env()` at start,
strictly: a value outside a setting's accepted values stops start-up with a ConfigError naming the
variable and what it accepts. The single source of truth for the variable names, the in-image paths,
the routes the probes call and the memory plan, so render, build and serve cannot drift apart.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from gitops_ml.errors import ConfigError
from gitops_ml.serving.predictions import OutputDeclaration
from gitops_ml.types import DeploymentSpec, ManifestSpec, ModelSpec

PREFIX = "GITOPS_ML_"
PORT = 8080
MODEL_DIR = "/opt/gitops-ml/model"
KEYS_DIR = "/var/run/secrets/gitops-ml/keys"
SCRATCH_DIR = "/tmp"
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
METRICS_PATH = "/metrics"
SCORE_PATH = "/score"
OPENAPI_PATH = "/swagger.json"
DOCS_PATH = "/docs"
# after SIGTERM inside a cluster: seconds of serving with readiness false while the endpoint removal propagates
KUBERNETES_DRAIN_SECONDS = 5.0
# what shutdown needs after the graceful stop: closing capture files and the access log
FLUSH_SECONDS = 5
# the gauge the server exports and an HPA on in-flight requests scales on (via a metrics adapter)
IN_FLIGHT_METRIC = "gitops_ml_in_flight"
# variables the image entrypoint reads besides the settings (ModelFiles and the drain time)
OTHER_VARIABLES = frozenset(
    PREFIX + name for name in ("SCRIPT", "SCHEMA", "SAMPLE", "OUTPUT_SCHEMA", "BUILTIN", "ARTIFACT", "BUILTIN_OPTIONS", "DRAIN_SECONDS", "KEYS_FD")
)  # serving.model_files.ModelFiles.from_env and the entrypoint's drain

# with a capture sink, the last upload of what is left may take this long more (then files stay for the
# next start); render must add capture_sink_flush_seconds to terminationGracePeriodSeconds when a sink is set
SINK_FLUSH_SECONDS = 20.0

# --- memory plan ------------------------------------------------------------------------------
# Measured with benchmarks/serving/memory.py: a JSON body of numbers raises the server's peak RSS by
# about 19 times its size while it is read, parsed (orjson's Python floats and lists) and turned into
# an array, and bodies are decoded one at a time. Once decoded, an admitted request holds its arrays
# (about twice the body for float64 rows) and, with capture on, its raw body, until it is answered.
DECODE_FACTOR = 19
DEFAULT_MEMORY_LIMIT = 1024**3  # the deployment file's default resources.limits.memory (1Gi)
MEMORY_SHARE_FOR_BODIES = 0.5  # the other half is the runtime's, the model's and what run() allocates
_QUANTITY = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E))?$")
_SUFFIXES = {
    "": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4, "Pi": 1024**5, "Ei": 1024**6,
}


@dataclass(frozen=True)
class Rule:
    """What a setting's variable accepts; `text` says it to a person."""

    low: float | None = None
    high: float | None = None
    above: bool = False  # low is exclusive
    choices: tuple[Any, ...] = ()
    pattern: str = ""
    text: str = ""


def _setting(default: Any, **rule: Any) -> Any:
    return field(default=default, metadata={"rule": Rule(**rule)})


_PATH_TEXT = "a non-empty path"


@dataclass(frozen=True)
class ServerSettings:
    """Everything the server needs besides the model directory's files."""

    model_name: str = _setting("model", pattern=r"[A-Za-z0-9][A-Za-z0-9._-]*", text="a model name (letters, digits, '.', '_', '-')")
    model_version: str = _setting("0.0.0", pattern=r"[A-Za-z0-9][A-Za-z0-9.+_-]*", text="a version such as 1.4.0")
    model_dir: str = _setting(MODEL_DIR, pattern=r".+", text=_PATH_TEXT)
    port: int = _setting(PORT, low=0, high=65535)
    host: str = _setting("0.0.0.0", pattern=r"[A-Za-z0-9.:_-]+|\[[0-9A-Fa-f:.]+\]", text="an address or host name, e.g. 0.0.0.0 or ::")
    auth_enabled: bool = _setting(True)
    keys_dir: str = _setting(KEYS_DIR, pattern=r".+", text=_PATH_TEXT)
    max_concurrent: int = _setting(1, low=1, high=1024)
    queue_size: int = _setting(10, low=0, high=100000)
    queue_timeout: float = _setting(5.0, low=0, above=True, high=600)
    request_timeout: float = _setting(5.0, low=0, above=True, high=3600)
    max_body_bytes: int = _setting(10 * 1024 * 1024, low=1, high=1024**3)
    body_timeout: float = _setting(30.0, low=0, above=True, high=3600)  # for a whole body to arrive after its headers (then 408)
    # bytes that admitted scoring bodies may cost at once (raw while arriving, decoded while queued);
    # beyond it a request is answered at once like a full queue
    body_budget_bytes: int = _setting(0, low=0, high=2**50)  # 0: derived from the default memory limit
    reject_status: int = _setting(503, choices=(503, 429))
    batch_enabled: bool = _setting(False)
    batch_max_size: int = _setting(32, low=1, high=4096)
    batch_max_wait_ms: float = _setting(2.0, low=0, high=1000)
    access_log: bool = _setting(True)
    capture_enabled: bool = _setting(False)
    capture_sampling: float = _setting(1.0, low=0, high=1)
    capture_dir: str = _setting("/var/lib/gitops-ml/capture", pattern=r".+", text=_PATH_TEXT)
    capture_max_file_bytes: int = _setting(64 * 1024 * 1024, low=1, high=2**40)  # tiny limits rotate per record (tests)
    # where closed capture files are uploaded (serving/sink.py); '' keeps them on the local volume only
    capture_sink_uri: str = _setting("", pattern=r".*", text="'' or an s3://BUCKET[/PREFIX] URI")  # checked by serving/sink.py
    capture_sink_endpoint: str = _setting("", pattern=r"(https?://\S+)?", text="'' or an http(s):// URL of an S3 endpoint")
    capture_sink_region: str = _setting("", pattern=r"[A-Za-z0-9-]*", text="'' or a region name such as eu-west-1")
    capture_sink_flush_seconds: float = _setting(SINK_FLUSH_SECONDS, low=0, high=3600)
    grace_seconds: float = _setting(30.0, low=0, above=True, high=3600)
    # the endpoint's public path prefix (exposure.path without its trailing '/'); '' for none. The
    # server answers under it and without it, whether or not the proxy strips it.
    path_prefix: str = _setting("", pattern=r"(/[A-Za-z0-9._~-]+)*", text="'' or a path such as /iris (no trailing '/')")
    # identity labels of every metric, so a canary and a shadow are told apart from the stable version
    environment: str = _setting("", pattern=r"[a-z0-9]([-a-z0-9]*[a-z0-9])?|", text="'' or an environment name (a DNS-1123 label)")
    track: str = _setting("", choices=("", "canary", "shadow"))  # "" for the stable version
    prediction_metrics: str = _setting("", pattern=r".*", text="the manifest's output declaration as JSON")  # predictions.OutputDeclaration

    @classmethod
    def from_specs(
        cls, model: ModelSpec, manifest: ManifestSpec, deployment: DeploymentSpec | None = None, **overrides: object
    ) -> "ServerSettings":
        values: dict[str, object] = {
            "model_name": model.name,
            "model_version": str(model.version),
            "batch_enabled": manifest.batch.enabled,
            "batch_max_size": manifest.batch.max_batch_size,
            "batch_max_wait_ms": manifest.batch.max_wait_ms,
            "prediction_metrics": output_declaration(manifest),
        }
        if deployment is not None:
            req = deployment.requests
            values.update(
                auth_enabled=deployment.auth.enabled,
                max_concurrent=req.max_concurrent,
                queue_size=req.queue_size,
                queue_timeout=req.queue_timeout,
                request_timeout=req.timeout,
                max_body_bytes=req.max_body_bytes,
                body_budget_bytes=body_budget(memory_limit_bytes(deployment), req.max_body_bytes),
                reject_status=req.reject_status,
                access_log=deployment.logging,
                capture_enabled=deployment.capture.enabled,
                capture_sampling=deployment.capture.sampling,
                capture_dir=deployment.capture.path,
                capture_max_file_bytes=deployment.capture.max_file_bytes,
                capture_sink_uri=deployment.capture.sink_uri,
                capture_sink_endpoint=deployment.capture.sink_endpoint,
                capture_sink_region=deployment.capture.sink_region,
                grace_seconds=grace_seconds(deployment),
                path_prefix=path_prefix(deployment.exposure.path) if deployment.exposure else "",
                environment=deployment.environment,
            )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def body_budget(self) -> int:
        """body_budget_bytes, or what the default pod memory limit leaves for bodies."""
        return self.body_budget_bytes or body_budget(DEFAULT_MEMORY_LIMIT, self.max_body_bytes)

    def __post_init__(self) -> None:
        if self.capture_sink_uri:
            from gitops_ml.serving.sink import parse_sink_uri  # noqa: PLC0415 - render imports settings, not the sink

            parse_sink_uri(self.capture_sink_uri)  # ValueError naming what is wrong

    def to_env(self) -> dict[str, str]:
        """GITOPS_ML_* variables, as strings, sorted by name."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[PREFIX + f.name.upper()] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return dict(sorted(out.items()))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **defaults: object) -> "ServerSettings":
        """Settings from GITOPS_ML_* variables; `defaults` fill what the environment does not set.

        Raises ConfigError naming every variable whose value is not accepted, and what it accepts.
        """
        env = os.environ if env is None else env
        values: dict[str, object] = dict(defaults)
        problems: list[str] = []
        for f in fields(cls):
            name = PREFIX + f.name.upper()
            raw = env.get(name)
            if raw is None:
                continue
            try:
                values[f.name] = parse_value(name, raw, type(f.default), f.metadata["rule"])
            except ValueError as exc:
                problems.append(str(exc))
        if problems:
            raise ConfigError("; ".join(problems), hint="fix the variable in the endpoint's ConfigMap (deployment file) or the environment")
        return cls(**values)  # type: ignore[arg-type]


def setting_names() -> frozenset[str]:
    """Every GITOPS_ML_* variable the image entrypoint reads."""
    return frozenset(PREFIX + f.name.upper() for f in fields(ServerSettings)) | OTHER_VARIABLES


def parse_value(name: str, raw: str, kind: type, rule: Rule) -> Any:
    """`raw` as a value of `kind` within `rule`; ValueError saying `name`, the value and what is accepted."""
    text = raw.strip()
    if kind is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{name}={raw!r} is not accepted: use true or false (also 1/0, yes/no, on/off)")
    if kind is int or kind is float:
        number: float | int
        whole = re.fullmatch(r"[+-]?\d+", text)
        if kind is int:
            if not whole:
                raise ValueError(f"{name}={raw!r} is not accepted: use {_range_text(rule, 'a whole number')}")
            number = int(text)
        else:
            if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text) or not math.isfinite(float(text)):
                raise ValueError(f"{name}={raw!r} is not accepted: use {_range_text(rule, 'a number')}")
            number = float(text)
        if rule.choices and number not in rule.choices:
            raise ValueError(f"{name}={raw!r} is not accepted: use one of {', '.join(map(str, rule.choices))}")
        too_low = rule.low is not None and (number <= rule.low if rule.above else number < rule.low)
        too_high = rule.high is not None and number > rule.high
        if too_low or too_high:
            raise ValueError(f"{name}={raw!r} is not accepted: use {_range_text(rule, 'a whole number' if kind is int else 'a number')}")
        return number
    if rule.pattern and not re.fullmatch(rule.pattern, text):
        raise ValueError(f"{name}={raw!r} is not accepted: use {rule.text}")
    return text


def _range_text(rule: Rule, what: str) -> str:
    if rule.choices:
        return "one of " + ", ".join(map(str, rule.choices))
    low = None if rule.low is None else f"{rule.low:g}"
    high = None if rule.high is None else f"{rule.high:g}"
    if low is not None and high is not None:
        return f"{what} above {low} and at most {high}" if rule.above else f"{what} from {low} to {high}"
    if low is not None:
        return f"{what} above {low}" if rule.above else f"{what} of at least {low}"
    return what


def path_prefix(path: str) -> str:
    """exposure.path as the server's prefix: '' for '/', no trailing '/' otherwise."""
    return "/" + "/".join(part for part in path.split("/") if part) if path.strip("/") else ""


def output_declaration(manifest: ManifestSpec) -> str:
    """GITOPS_ML_PREDICTION_METRICS of a manifest: its output declaration as JSON, '' when it has none."""
    out = manifest.output
    if out is None:
        return ""
    return OutputDeclaration(out.kind, out.field, out.classes, out.max_classes, out.buckets).to_json()


def grace_seconds(deployment: DeploymentSpec) -> float:
    """Long enough to drain a full queue and the requests in flight, plus the endpoint removal lag."""
    req = deployment.requests
    per_slot = max(1, -(-req.queue_size // req.max_concurrent))
    drain = req.timeout * (per_slot + 1)
    return float(min(600, max(30, int(drain + 10))))


# --- memory plan ------------------------------------------------------------------------------


def quantity_value(quantity: str | int | float) -> float | None:
    """A Kubernetes quantity (512Mi, 1G, 1e9, 250m) as a number; None when it is not one."""
    match = _QUANTITY.match(str(quantity).strip())
    if not match:
        return None
    number, exponent, suffix = match.groups()
    scale = 10.0 ** int(exponent[1:]) if exponent else _SUFFIXES[suffix or ""]
    return float(number) * scale


def quantity_bytes(quantity: str | int | float) -> int | None:
    """A Kubernetes memory quantity (512Mi, 1G, 1e9, 1073741824) in bytes; None when it is not one."""
    value = quantity_value(quantity)
    return None if value is None else int(value)


def memory_limit_bytes(deployment: DeploymentSpec) -> int | None:
    """The deployment's resources.limits.memory in bytes, or None when it sets none."""
    value = deployment.resource_limits.get("memory")
    return quantity_bytes(value) if value is not None else None


def body_budget(memory_limit: int | None, max_body_bytes: int) -> int:
    """Bytes admitted scoring bodies may cost at once in a pod with this memory limit.

    Half the limit is left to the runtime, the model and run(); of the other half, one body's decoding
    peak is kept aside (bodies are decoded one at a time). Never less than one max-size body, so a
    body the limits accept can always be served alone.
    """
    limit = memory_limit or DEFAULT_MEMORY_LIMIT
    budget = int(limit * MEMORY_SHARE_FOR_BODIES) - DECODE_FACTOR * max_body_bytes
    return max(budget, 2 * max_body_bytes)


def memory_problem(memory_limit: int | None, max_body_bytes: int) -> str:
    """Why a pod with this memory limit cannot hold a max-size body while it decodes; '' when it can.

    For `validate`: the rule the server's memory plan rests on (see body_budget).
    """
    if memory_limit is None:
        return ""
    needed = 2 * (DECODE_FACTOR + 2) * max_body_bytes
    if memory_limit >= needed:
        return ""
    return (
        f"resources.limits.memory ({memory_limit / 1024**2:.0f} MiB) is too small for requests.maxBodyBytes "
        f"({max_body_bytes / 1024**2:.1f} MiB): decoding one max-size body takes up to {DECODE_FACTOR}x its size, "
        f"and half the limit is kept for the runtime and the model; set the limit to at least "
        f"{-(-needed // 1024**2)}Mi or lower maxBodyBytes"
    )

"""The built-in scorers as data: their names, the artifact formats each loads, the packages the
image must get for them, and how an artifact's format is told from its first bytes. Pure and light
(no numpy, no model library): `validate`, `build` and the server all read it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

# how the image learns which built-in to run: the server does not parse manifest.yaml there
BUILTIN_ENV = "GITOPS_ML_BUILTIN"
ARTIFACT_ENV = "GITOPS_ML_ARTIFACT"
OPTIONS_ENV = "GITOPS_ML_BUILTIN_OPTIONS"

# artifact formats told apart by their first bytes (sniff_format)
PICKLE = "pickle"
XGBOOST = "xgboost"
LIGHTGBM = "lightgbm"
ONNX = "onnx"
MLFLOW_ZIP = "mlflow"  # a zip of an MLflow model directory (MLmodel at its root)
ZIP = "zip"
UNKNOWN = ""

FORMAT_NAMES = {
    PICKLE: "a pickle (joblib.dump, pickle, cloudpickle)",
    XGBOOST: "an XGBoost model file",
    LIGHTGBM: "a LightGBM model text file",
    ONNX: "an ONNX graph",
    MLFLOW_ZIP: "a zipped MLflow model directory",
    ZIP: "a zip archive",
}


@dataclass(frozen=True)
class Builtin:
    """One built-in scorer: what it loads and what the image needs for it."""

    name: str
    loads: str  # the artifact it takes, for messages
    formats: frozenset[str]
    framework: tuple[str, ...]  # distributions of which the model's requirements must name one
    added: str = ""  # requirement the image gets when the model's requirements name none of `framework`
    probabilities: bool = False  # whether `probabilities: true` means something for it

    @property
    def needs_framework(self) -> bool:
        return not self.added


BUILTINS: Mapping[str, Builtin] = {
    b.name: b
    for b in (
        Builtin("sklearn", "a scikit-learn estimator or pipeline saved with joblib.dump or pickle", frozenset({PICKLE}),
                ("scikit-learn",), probabilities=True),
        Builtin("xgboost", "an XGBoost model saved with save_model (.json or .ubj)", frozenset({XGBOOST}),
                ("xgboost", "xgboost-cpu"), probabilities=True),
        Builtin("lightgbm", "a LightGBM model saved with Booster.save_model (text)", frozenset({LIGHTGBM}),
                ("lightgbm",), probabilities=True),
        Builtin("onnx", "an ONNX graph (skl2onnx, torch.onnx, tf2onnx...)", frozenset({ONNX}),
                ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino"), added="onnxruntime>=1.17", probabilities=True),
        Builtin("mlflow", "an MLflow model directory, zipped (gitops-ml import mlflow writes it)", frozenset({MLFLOW_ZIP}),
                ("mlflow", "mlflow-skinny"), added="mlflow-skinny>=2.12"),
    )
}

_ZLIB_HEADERS = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")
# ModelProto field tags that follow ir_version (field 1) in files written by the ONNX serializers
_ONNX_NEXT_TAGS = frozenset({0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72})


def sniff_format(head: bytes, names: Iterable[str] = ()) -> str:
    """The artifact format of a file from its first bytes (64 are plenty; `names` are the member
    names when the file is a zip), or UNKNOWN."""
    if head[:1] == b"\x80" and head[1:2] and 2 <= head[1] <= 5:
        return PICKLE
    if head.startswith((b"\x1f\x8b", b"\xfd7zXZ\x00", b"BZh", b"\x04\x22\x4d\x18")) or head[:2] in _ZLIB_HEADERS:
        return PICKLE  # joblib.dump(..., compress=...) writes a compressed pickle
    if head.startswith(b"PK\x03\x04"):
        listed = {n.rstrip("/") for n in names}
        return MLFLOW_ZIP if "MLmodel" in listed else ZIP
    if head.startswith(b"tree\n") or head.startswith(b"tree\r\n"):
        return LIGHTGBM
    stripped = head.lstrip()
    if stripped[:1] == b"{" and b"learner" in head[:64]:
        return XGBOOST  # JSON ({"learner": ...}) and UBJSON ({L...learner) alike
    if _is_onnx(head):
        return ONNX
    return UNKNOWN


def _is_onnx(head: bytes) -> bool:
    # ModelProto starts with ir_version (field 1, varint): tag 0x08, a small version, then another field
    if len(head) < 3 or head[0] != 0x08 or not 1 <= head[1] <= 30:
        return False
    return head[2] in _ONNX_NEXT_TAGS


def format_problem(builtin: Builtin, found: str, artifact: str) -> tuple[str, str] | None:
    """(message, hint) when the artifact's format is one another built-in loads; None when it fits
    or cannot be told (the loader then says what it found at start)."""
    if found == UNKNOWN or found in builtin.formats:
        return None
    fitting = [b.name for b in BUILTINS.values() if found in b.formats]
    what = FORMAT_NAMES.get(found, found)
    message = f"builtin {builtin.name} loads {builtin.loads}, but {artifact} is {what}"
    hint = f"use `builtin: {fitting[0]}`" if fitting else "write a score.py for it (scoring.script), or save the model in a format a built-in loads"
    if found == ZIP and builtin.name == "mlflow":
        hint = "the zip has no MLmodel at its root: zip the MLflow model directory itself, or let `gitops-ml import mlflow` write it"
    return message, hint


_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_name(line: str) -> str:
    """The canonical distribution name a requirement line names ('' for options and blanks)."""
    line = line.strip()
    if not line or line.startswith(("-", "#")):
        return ""
    match = _NAME.match(line)
    return canonical(match.group(1)) if match else ""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def named(builtin: Builtin, requirement_lines: Iterable[str]) -> bool:
    """Whether the requirements name one of the built-in's framework distributions."""
    names = {requirement_name(line) for line in requirement_lines}
    return any(canonical(n) in names for n in builtin.framework)


def builtin_requirements(name: str, requirement_lines: Iterable[str]) -> list[str]:
    """What the image gets for a built-in beyond the model's own requirements: its loader, when the
    requirements do not name one (the model's own framework is never guessed: its version must be
    the one that saved the artifact, so `validate` asks for it instead)."""
    builtin = BUILTINS.get(name)
    if builtin is None or not builtin.added or named(builtin, requirement_lines):
        return []
    return [builtin.added]


def options_json(probabilities: bool) -> str:
    """The GITOPS_ML_BUILTIN_OPTIONS value for a manifest's scoring options ('' for the defaults)."""
    return json.dumps({"probabilities": True}, sort_keys=True) if probabilities else ""


def builtin_env(builtin: str, artifact: str, probabilities: bool) -> dict[str, str]:
    """The variables that make the image's server run a built-in on the artifact ({} for score.py)."""
    if not builtin:
        return {}
    env = {BUILTIN_ENV: builtin, ARTIFACT_ENV: artifact}
    options = options_json(probabilities)
    if options:
        env[OPTIONS_ENV] = options
    return env

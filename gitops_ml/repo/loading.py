"""Repository files -> documents that remember where every value came from.

Parsing uses libyaml (PyYAML's C parser) with YAML 1.2 scalars; positions are recovered only for a
file that has a finding, by composing its node tree once, so a clean repository never pays for
round-trip parsing. This module is the only place raw YAML/JSON data is read; it never validates
against schemas and never prints.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import yaml

from gitops_ml.errors import LoadError, Location
from gitops_ml.repo.sources import FileSource
from gitops_ml.types import (
    DEPLOYMENTS_DIR,
    MODELS_DIR,
    REPOSITORY_FILE,
    Finding,
    Kind,
)

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_EXPANDED_NODES = 100_000

JsonPath = Sequence["str | int"]

try:  # libyaml is in every PyYAML wheel; the pure-Python parser is a slow fallback
    _BaseLoader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _BaseLoader = yaml.SafeLoader


class _Loader(_BaseLoader):  # type: ignore[misc]
    """libyaml with YAML 1.2 core-schema scalars, no timestamps, and duplicate keys refused."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise _LocatedYamlError(key_node, "mapping keys must be scalars")
            if key in mapping:
                raise _LocatedYamlError(key_node, f"duplicate key {key!r}")
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:timestamp"}]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()  # type: ignore[attr-defined]
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)

_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|\.[0-9]+[eE][-+]?[0-9]+|[0-9]+[eE][-+]?[0-9]+)"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_int(loader: yaml.BaseLoader, node: yaml.ScalarNode) -> int:
    text = str(loader.construct_scalar(node))
    if text.startswith(("0x", "0o")):
        return int(text, 0)
    return int(text, 10)  # YAML 1.2: a leading zero is still decimal


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)


class _LocatedYamlError(yaml.YAMLError):  # type: ignore[misc]
    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.node = node
        self.message = message


@dataclass
class Document:
    """One parsed file: its repository-relative path, data, and text for locating findings."""

    path: str
    data: Any
    text: str
    kind: Kind | None = None
    is_json: bool = False
    _root: Any = field(default=None, repr=False)

    def locate(self, json_path: JsonPath = (), *, key: bool = False) -> Location:
        """Location of the value at json_path (or of its key, with key=True); the nearest parent
        when the path does not exist (a missing required field points at its object)."""
        pointer = format_json_path(json_path)
        if self.is_json:
            line, col = _locate_json(self.text, json_path)
            return Location(self.path, line, col, pointer)
        if self._root is None:
            self._root = yaml.compose(self.text, Loader=_BaseLoader)
        node, key_node = self._root, None
        for part in json_path:
            child = _child(node, part)
            if child is None:
                break
            key_node, node = child
        target = key_node if key and key_node is not None else node
        if target is None:
            return Location(self.path, 1, 1, pointer)
        return Location(self.path, target.start_mark.line + 1, target.start_mark.column + 1, pointer)


def _child(node: Any, part: str | int) -> tuple[Any, Any] | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and (k.value == part or k.value == str(part)):
                return k, v
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return None, node.value[part]
    return None


def format_json_path(parts: Iterable[str | int]) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if re.fullmatch(r"[A-Za-z_][\w-]*", str(p)) else f"[{json.dumps(p)}]")
    return out


# --- reading ---------------------------------------------------------------------------------


def _decode(path: str, raw: bytes) -> str:
    if len(raw) > MAX_FILE_BYTES:
        raise LoadError(
            f"file is {len(raw) / 2**20:.1f} MiB; gitops-ml files may be at most {MAX_FILE_BYTES // 2**20} MiB",
            location=Location(path, 1, 1),
            hint="keep large data out of YAML: reference artifacts by URI and sha256",
        )
    if b"\x00" in raw[:8192]:
        raise LoadError("binary file: expected UTF-8 text", location=Location(path, 1, 1))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise LoadError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})", location=Location(path, line, col)
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def parse_yaml(path: str, raw: bytes, kind: Kind | None = None) -> Document:
    """Parse one YAML file into a Document, or raise a located LoadError."""
    text = _decode(path, raw)
    try:
        loader = _Loader(text)
        try:
            if not loader.check_node():
                raise LoadError("file is empty", location=Location(path, 1, 1))
            node = loader.get_node()
            if loader.check_node():
                extra = loader.get_node()
                raise LoadError(
                    "expected one YAML document, found several",
                    location=Location(path, extra.start_mark.line + 1, extra.start_mark.column + 1),
                )
            if node is None:
                raise LoadError("file is empty", location=Location(path, 1, 1))
            if "&" in text:  # aliases need an anchor; only then can a document expand
                _check_expansion(path, node)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except _LocatedYamlError as exc:
        mark = exc.node.start_mark
        raise LoadError(exc.message, location=Location(path, mark.line + 1, mark.column + 1)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or "invalid YAML"
        lines = text.splitlines()
        if mark and mark.line < len(lines) and lines[mark.line][mark.column : mark.column + 1] == "\t":
            problem = "tab character; YAML indents with spaces"
        context = f" ({exc.context})" if exc.context and "tab" not in problem else ""
        raise LoadError(f"YAML syntax error: {problem}{context}", location=Location(path, line, col)) from None
    except yaml.YAMLError as exc:
        raise LoadError(f"YAML error: {exc}", location=Location(path, 1, 1)) from None
    except RecursionError:
        raise LoadError("YAML nesting is too deep", location=Location(path, 1, 1)) from None
    if data is None:
        raise LoadError("file is empty", location=Location(path, 1, 1))
    return Document(path, data, text, kind)


def load_text(text: str) -> Any:
    """The data of YAML text as gitops-ml reads its files (YAML 1.2 core scalars, duplicate keys
    refused); yaml.YAMLError or _LocatedYamlError when it is not valid."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader


def _check_expansion(path: str, root: yaml.Node) -> None:
    """Refuse documents whose aliases would expand beyond MAX_EXPANDED_NODES (alias bombs)."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = MAX_EXPANDED_NODES + 1  # a cycle counts as unbounded
        total = 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > MAX_EXPANDED_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for v in node.value:
                total += size(v)
                if total > MAX_EXPANDED_NODES:
                    break
        sizes[id(node)] = total
        return total

    if size(root) > MAX_EXPANDED_NODES:
        raise LoadError(
            f"YAML aliases expand to more than {MAX_EXPANDED_NODES:,} nodes (an alias bomb?)",
            location=Location(path, root.start_mark.line + 1, root.start_mark.column + 1),
        )


def parse_json(path: str, raw: bytes) -> Document:
    """Parse one JSON file into a Document, or raise a located LoadError."""
    text = _decode(path, raw)
    if not text.strip():
        raise LoadError("file is empty", location=Location(path, 1, 1))

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise ValueError(f"duplicate key {k!r}")
            out[k] = v
        return out

    def not_json(constant: str) -> Any:
        # Python's json reads NaN and Infinity; JSON has neither, and the server refuses them
        raise json.JSONDecodeError(f"{constant} is not JSON (numbers must be finite)", text, _constant_at(text, constant))

    try:
        data = json.loads(text, object_pairs_hook=no_duplicates, parse_constant=not_json)
    except json.JSONDecodeError as exc:
        raise LoadError(f"JSON syntax error: {exc.msg}", location=Location(path, exc.lineno, exc.colno)) from None
    except ValueError as exc:
        raise LoadError(f"JSON error: {exc}", location=Location(path, 1, 1)) from None
    except RecursionError:
        raise LoadError("JSON nesting is too deep", location=Location(path, 1, 1)) from None
    return Document(path, data, text, is_json=True)


def _constant_at(text: str, constant: str) -> int:
    """Offset of a bare NaN/Infinity token (the first one: parse_constant is not told where)."""
    found = re.search(rf"(?<![\w\"]){re.escape(constant)}(?![\w\"])", text)
    return found.start() if found else 0


def _locate_json(text: str, json_path: JsonPath) -> tuple[int, int]:
    """Line and column of a value in JSON text, found by a small scanner (only used on findings)."""
    decoder = json.JSONDecoder()
    pos = 0

    def skip_ws(i: int) -> int:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i

    pos = skip_ws(pos)
    for part in json_path:
        if pos >= len(text):
            break
        if text[pos] == "{":
            i = skip_ws(pos + 1)
            found = False
            while i < len(text) and text[i] != "}":
                key, i = decoder.raw_decode(text, i)
                i = skip_ws(i)
                i = skip_ws(i + 1)  # ':'
                if key == part:
                    pos, found = i, True
                    break
                _, i = decoder.raw_decode(text, i)
                i = skip_ws(i)
                if i < len(text) and text[i] == ",":
                    i = skip_ws(i + 1)
            if not found:
                break
        elif text[pos] == "[" and isinstance(part, int):
            i = skip_ws(pos + 1)
            for _ in range(part):
                _, i = decoder.raw_decode(text, i)
                i = skip_ws(i)
                i = skip_ws(i + 1)
            pos = i
        else:
            break
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


# --- the repository tree ---------------------------------------------------------------------


@dataclass
class ModelFiles:
    """Documents of one models/<model>/ directory."""

    name: str
    dir: str
    model: Document | None = None
    manifest: Document | None = None


@dataclass
class DeploymentFile:
    environment: str
    model_file: str  # file name without .yaml; must equal the pinned model
    document: Document


@dataclass
class RepositoryTree:
    """Everything loading found, plus the findings of files that could not be loaded."""

    source: FileSource
    repository: Document | None = None
    models: dict[str, ModelFiles] = field(default_factory=dict)
    deployments: list[DeploymentFile] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def read_document(self, rel: str, *, json_doc: bool = False) -> Document:
        raw = self.source.read(rel)
        return parse_json(rel, raw) if json_doc else parse_yaml(rel, raw)


def _load(tree: RepositoryTree, rel: str, kind: Kind) -> Document | None:
    try:
        doc = parse_yaml(rel, tree.source.read(rel), kind)
    except LoadError as exc:
        tree.findings.append(Finding(exc.location or Location(rel), exc.message, hint=exc.hint))
        return None
    except OSError as exc:
        tree.findings.append(Finding(Location(rel), f"cannot read file: {exc.strerror or exc}"))
        return None
    return doc


def load_tree(source: FileSource, *, only_models: set[str] | None = None) -> RepositoryTree:
    """Read gitops-ml.yaml, every models/<m>/{model,manifest}.yaml and deployments/<env>/<m>.yaml."""
    tree = RepositoryTree(source)
    if source.is_file(REPOSITORY_FILE):
        tree.repository = _load(tree, REPOSITORY_FILE, Kind.REPOSITORY)
    else:
        tree.findings.append(
            Finding(Location(REPOSITORY_FILE), "repository file is missing", hint="create one with `gitops-ml init`")
        )
    for name in source.listdir(MODELS_DIR):
        rel_dir = f"{MODELS_DIR}/{name}"
        if not source.is_dir(rel_dir) or (only_models is not None and name not in only_models):
            continue
        files = ModelFiles(name, rel_dir)
        for attr, fname, kind in (("model", "model.yaml", Kind.MODEL), ("manifest", "manifest.yaml", Kind.MANIFEST)):
            rel = f"{rel_dir}/{fname}"
            if source.is_file(rel):
                setattr(files, attr, _load(tree, rel, kind))
            else:
                tree.findings.append(Finding(Location(rel), f"{fname} is missing in {rel_dir}/"))
        tree.models[name] = files
    for env in source.listdir(DEPLOYMENTS_DIR):
        env_dir = f"{DEPLOYMENTS_DIR}/{env}"
        if not source.is_dir(env_dir):
            continue
        for fname in source.listdir(env_dir):
            rel = f"{env_dir}/{fname}"
            if not fname.endswith((".yaml", ".yml")) or not source.is_file(rel):
                continue
            doc = _load(tree, rel, Kind.DEPLOYMENT)
            if doc is not None:
                stem = fname.rsplit(".", 1)[0]
                tree.deployments.append(DeploymentFile(env, stem, doc))
    return tree

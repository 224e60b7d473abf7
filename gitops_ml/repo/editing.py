"""Edit a few values of a YAML file and leave every other byte alone (bump, promote, rollback).

Values are located with the parser's marks and spliced into the original text, so comments, key
order, quoting, blank lines, anchors and flow style survive exactly; the result is then re-read as
gitops-ml reads its files (repo/loading: YAML 1.2 core scalars) to prove that the document changed
as intended and nowhere else.
Never prints and never touches git; files are written atomically by `write_file_edits`, and put
back by `undo_file_edits` and `DirectorySnapshot` when a later step fails.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import yaml

from gitops_ml.atomic import write_atomic
from gitops_ml.errors import EditError, Location
from gitops_ml.repo.loading import load_text

Scalar = Union[str, int, float, bool]
Value = Union[Scalar, Mapping[str, Any]]
KeyPath = tuple[str, ...]

# an anchor (&name) or a tag (!tag) in front of a scalar belongs to the node, not to its value
_NODE_PROPERTIES = re.compile(r"^(?:[&!]\S*\s+)*")


@dataclass(frozen=True)
class SetValue:
    """Set the value at a path of mapping keys; missing mappings on the way are created."""

    path: KeyPath
    value: Value


@dataclass(frozen=True)
class DeleteKey:
    """Remove a key (and its value) if present."""

    path: KeyPath


Edit = Union[SetValue, DeleteKey]


@dataclass(frozen=True)
class FileEdit:
    """The planned new text of one repository file; nothing is written until it is applied."""

    path: str  # repository-relative
    before: str
    after: str
    created: bool = False  # the file does not exist yet: undoing the edit removes it

    @property
    def changed(self) -> bool:
        return self.before != self.after


def edit_text(text: str, edits: Sequence[Edit], *, label: str = "<yaml>") -> str:
    """The text with the edits applied in order; raises EditError when an edit cannot be made in place.

    Edits of distinct paths are located in one parse and spliced together (a bump that rewrites
    5,000 metric lines parses the file once, not 5,000 times); edits that touch the same path, or
    whose splices would overlap, are applied one after the other."""
    out = _apply_together(text, edits, label)
    if out is None:
        out = text
        for edit in edits:
            out = _apply(out, edit, label)
    _verify(text, out, edits, label)
    return out


def _overlapping_paths(edits: Sequence[Edit]) -> bool:
    paths = sorted(edit.path for edit in edits)
    return any(b[: len(a)] == a for a, b in zip(paths, paths[1:]))


def _apply_together(text: str, edits: Sequence[Edit], label: str) -> str | None:
    """All edits spliced from one parse of the text; None when they must be applied in turn."""
    if len(edits) < 2 or _overlapping_paths(edits):
        return None
    root = _compose(text, label)
    doc = _Text(text)
    shared = _shared_nodes(root)
    splices: list[tuple[int, int, str]] = []
    # new keys per existing mapping, in edit order; a missing parent collects its children
    inserts: dict[int, tuple[yaml.Node, dict[str, Any]]] = {}
    indexes: dict[int, dict[str, tuple[yaml.Node, yaml.Node]]] = {}

    def entry(mapping: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
        if not isinstance(mapping, yaml.MappingNode):
            return None
        index = indexes.get(id(mapping))
        if index is None:  # one pass over a mapping, however many of its keys are edited
            index = indexes[id(mapping)] = {}
            for k, v in mapping.value:
                if isinstance(k, yaml.ScalarNode):
                    index.setdefault(k.value, (k, v))
        return index.get(key)

    for edit in edits:
        parent: yaml.Node = root
        missing_at = None
        for depth, key in enumerate(edit.path[:-1]):
            found = entry(parent, key)
            if found is None:
                missing_at = depth
                break
            parent = found[1]
            if not isinstance(parent, yaml.MappingNode):
                raise EditError(f"{'.'.join(edit.path[: depth + 1])} is not a mapping", location=_where(label, doc, parent))
        if missing_at is not None:
            if isinstance(edit, DeleteKey):
                continue
            pending = inserts.setdefault(id(parent), (parent, {}))[1]
            for inner in edit.path[missing_at:-1]:
                pending = pending.setdefault(inner, {})
                if not isinstance(pending, dict):
                    return None
            pending[edit.path[-1]] = edit.value
            continue
        key = edit.path[-1]
        found = entry(parent, key)
        if isinstance(edit, DeleteKey):
            if found is not None:
                removed = _delete_span(doc, parent, found, label)
                if removed is None:
                    return None
                splices.append((*removed, ""))
            continue
        if found is None:
            inserts.setdefault(id(parent), (parent, {}))[1][key] = edit.value
            continue
        splices.append(_replace_span(doc, found[1], edit, shared, label))
    for mapping, values in inserts.values():
        added = _insert_span(doc, mapping, values, label)
        if added is None:
            return None
        splices.append(added)
    splices.sort(key=lambda s: (s[0], s[1]))
    if any(a[1] > b[0] for a, b in zip(splices, splices[1:])):
        return None  # an insertion inside a removed block, say: one edit at a time is exact
    out = text
    for start, end, piece in reversed(splices):
        out = out[:start] + piece + out[end:]
    return out


def _replace_span(doc: _Text, node: yaml.Node, edit: SetValue, shared: set[int], label: str) -> tuple[int, int, str]:
    """Where a scalar's text is and what replaces it; EditError when it cannot be replaced in place."""
    dotted = ".".join(edit.path)
    if id(node) in shared:
        raise EditError(
            f"{dotted} is shared through a YAML anchor and alias; changing it would change every use",
            location=_where(label, doc, node),
            hint="edit this value by hand, or give it its own value without an anchor",
        )
    if isinstance(edit.value, Mapping):
        raise EditError(f"{dotted}: cannot replace a value with a mapping in place", location=_where(label, doc, node))
    if not isinstance(node, yaml.ScalarNode) or node.style in ("|", ">"):
        raise EditError(
            f"{dotted} is not a one-line value; edit it by hand", location=_where(label, doc, node)
        )
    text = doc.text
    start, end = doc.offset(node.start_mark), doc.offset(node.end_mark)
    start += len(_NODE_PROPERTIES.match(text[start:end]).group(0))  # type: ignore[union-attr]
    return start, end, _render_scalar(edit.value, node.style)


def _delete_span(doc: _Text, mapping: yaml.Node, entry: tuple[yaml.Node, yaml.Node], label: str) -> tuple[int, int] | None:
    """The text a block mapping entry occupies (its whole lines); None for a flow mapping, which
    is edited one key at a time."""
    assert isinstance(mapping, yaml.MappingNode)
    if mapping.flow_style:
        return None
    text = doc.text
    key_node, value = entry
    k_start, v_end = doc.offset(key_node.start_mark), doc.offset(value.end_mark)
    line_start = doc.line_start(k_start)
    if text[line_start:k_start].strip():
        raise EditError(f"cannot remove {key_node.value!r} in place", location=_where(label, doc, key_node))
    return line_start, v_end if value.end_mark.column == 0 else doc.line_end(v_end)


def _insert_span(doc: _Text, mapping: yaml.Node, values: Mapping[str, Any], label: str) -> tuple[int, int, str] | None:
    """New keys at the end of a block mapping, as one splice; None for a flow mapping."""
    first = next(iter(values))
    if not isinstance(mapping, yaml.MappingNode):
        raise EditError(f"cannot add {first!r}: its parent is not a mapping", location=_where(label, doc, mapping))
    if mapping.flow_style:
        return None
    if not mapping.value:
        raise EditError(f"cannot add {first!r} to an empty mapping in place", location=_where(label, doc, mapping))
    text = doc.text
    column = mapping.value[0][0].start_mark.column
    last = _last_leaf(mapping.value[-1][1])
    end = doc.offset(last.end_mark)
    at = end if last.end_mark.column == 0 else doc.line_end(end)
    step = _indent_step(doc, mapping)
    lines = "".join(_render_block(key, value, column, step) for key, value in values.items())
    prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
    return at, at, prefix + lines


def plan_file_edit(root: Path, rel: str, edits: Sequence[Edit]) -> FileEdit:
    """Read root/rel and compute its edited text (nothing is written)."""
    try:
        before = (Path(root) / rel).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EditError(f"{rel} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EditError(f"cannot read {rel}: {exc}") from None
    return FileEdit(rel, before, edit_text(before, edits, label=rel))


def write_file_edits(root: Path, edits: Sequence[FileEdit]) -> list[str]:
    """Write the changed files atomically; returns their repository-relative paths."""
    written = []
    for edit in edits:
        if edit.changed:
            write_atomic(Path(root) / edit.path, edit.after)
            written.append(edit.path)
    return written


def undo_file_edits(root: Path, edits: Sequence[FileEdit]) -> None:
    """Give the files their text from before the edits (for a failure after write_file_edits);
    files the edits created are removed."""
    for edit in edits:
        if edit.created:
            (Path(root) / edit.path).unlink(missing_ok=True)
    write_file_edits(root, [FileEdit(e.path, e.after, e.before) for e in edits if not e.created])


@dataclass(frozen=True)
class DirectorySnapshot:
    """The regular files under one directory, byte for byte, to put it back as it was after a
    failure (a render that wrote half of its files, a commit or push that failed afterwards)."""

    directory: Path
    files: Mapping[str, bytes]  # path relative to directory -> content
    links: Mapping[str, str]  # symbolic links: path -> target, never followed

    @classmethod
    def take(cls, directory: Path) -> "DirectorySnapshot":
        files: dict[str, bytes] = {}
        links: dict[str, str] = {}
        for rel, full in _walk(Path(directory)):
            if os.path.islink(full):
                links[rel] = os.readlink(full)
            elif os.path.isfile(full):
                with open(full, "rb") as fh:
                    files[rel] = fh.read()
        return cls(Path(directory), files, links)

    def restore(self) -> None:
        """Make the directory hold exactly the snapshot's files again; files it did not have are
        removed, and so are the directories that held only them."""
        for rel, full in _walk(self.directory):
            if rel not in self.files and rel not in self.links:
                os.unlink(full)
        for rel, target in self.links.items():
            link = self.directory / rel
            if not (link.is_symlink() and os.readlink(link) == target):
                if os.path.lexists(link):
                    link.unlink()
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(target, link)
        for rel, data in self.files.items():
            path = self.directory / rel
            if path.is_symlink() or not path.is_file() or path.read_bytes() != data:
                if path.is_symlink():
                    path.unlink()
                write_atomic(path, data)
        kept = {str(Path(rel).parent) for rel in [*self.files, *self.links]}
        for dirpath, _, _ in sorted(os.walk(self.directory), key=lambda entry: -len(entry[0])):
            rel = os.path.relpath(dirpath, self.directory)
            if rel != "." and not any(k == rel or k.startswith(rel + os.sep) for k in kept) and not os.listdir(dirpath):
                os.rmdir(dirpath)


def _walk(directory: Path) -> list[tuple[str, str]]:
    """(path relative to directory, full path) of every non-directory entry, links not followed."""
    out = []
    for dirpath, dirnames, filenames in os.walk(directory):
        out += [(os.path.relpath(os.path.join(dirpath, name), directory), os.path.join(dirpath, name))
                for name in [*filenames, *(d for d in dirnames if os.path.islink(os.path.join(dirpath, d)))]]
    return out


# --- locating ----------------------------------------------------------------------------------


class _Text:
    """Offsets of line starts, to turn parser marks (line, column) into string offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self.starts.append(i + 1)

    def offset(self, mark: yaml.Mark) -> int:
        if mark.line >= len(self.starts):
            return len(self.text)
        start: int = self.starts[mark.line]
        return min(start + int(mark.column), len(self.text))

    def line_end(self, offset: int) -> int:
        """Offset just after the newline of the line holding offset (or the end of the text)."""
        nl = self.text.find("\n", offset)
        return len(self.text) if nl < 0 else nl + 1

    def line_start(self, offset: int) -> int:
        return self.text.rfind("\n", 0, offset) + 1


def _compose(text: str, label: str) -> yaml.Node:
    try:
        # the pure-Python parser: its marks count characters, which is what string offsets need
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise EditError(f"{label} is not valid YAML: {exc}") from None
    if not isinstance(node, yaml.MappingNode):
        raise EditError(f"{label}: expected a mapping at the top level")
    return node


def _shared_nodes(root: yaml.Node) -> set[int]:
    """Ids of nodes reached more than once: an anchor and its aliases share one node."""
    seen: set[int] = set()
    shared: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            shared.add(id(node))
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                stack.extend((k, v))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return shared


def _entry(mapping: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    for k, v in mapping.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return k, v
    return None


def _where(label: str, doc: _Text, node: yaml.Node) -> Location:
    return Location(label, node.start_mark.line + 1, node.start_mark.column + 1)


def _apply(text: str, edit: Edit, label: str) -> str:
    root = _compose(text, label)
    doc = _Text(text)
    shared = _shared_nodes(root)
    parent: yaml.Node = root
    for depth, key in enumerate(edit.path[:-1]):
        found = _entry(parent, key) if isinstance(parent, yaml.MappingNode) else None
        if found is None:
            if isinstance(edit, DeleteKey):
                return text
            nested: Value = edit.value
            for inner in reversed(edit.path[depth + 1 :]):
                nested = {inner: nested}
            return _insert(doc, parent, key, nested, label)
        parent = found[1]
        if not isinstance(parent, yaml.MappingNode):
            raise EditError(f"{'.'.join(edit.path[: depth + 1])} is not a mapping", location=_where(label, doc, parent))
    key = edit.path[-1]
    found = _entry(parent, key) if isinstance(parent, yaml.MappingNode) else None
    dotted = ".".join(edit.path)
    if isinstance(edit, DeleteKey):
        return text if found is None else _delete(doc, parent, found, label)
    if found is None:
        return _insert(doc, parent, key, edit.value, label)
    key_node, node = found
    if id(node) in shared:
        raise EditError(
            f"{dotted} is shared through a YAML anchor and alias; changing it would change every use",
            location=_where(label, doc, node),
            hint="edit this value by hand, or give it its own value without an anchor",
        )
    if isinstance(edit.value, Mapping):
        raise EditError(f"{dotted}: cannot replace a value with a mapping in place", location=_where(label, doc, node))
    if not isinstance(node, yaml.ScalarNode) or node.style in ("|", ">"):
        raise EditError(
            f"{dotted} is not a one-line value; edit it by hand", location=_where(label, doc, node)
        )
    start, end = doc.offset(node.start_mark), doc.offset(node.end_mark)
    start += len(_NODE_PROPERTIES.match(text[start:end]).group(0))  # type: ignore[union-attr]
    return text[:start] + _render_scalar(edit.value, node.style) + text[end:]


def _indent_step(doc: _Text, mapping: yaml.MappingNode) -> int:
    """Indentation used by nested blocks in this file (2 when nothing tells)."""
    for _, v in mapping.value:
        if isinstance(v, yaml.MappingNode) and not v.flow_style and v.value:
            return max(1, int(v.value[0][0].start_mark.column) - int(mapping.value[0][0].start_mark.column))
    return 2


def _last_leaf(node: yaml.Node) -> yaml.Node:
    """The last scalar or flow node of a block value: a new key goes after its line, not after
    the comments and blank lines that may follow the block."""
    while isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    return node


def _insert(doc: _Text, mapping: yaml.Node, key: str, value: Value, label: str) -> str:
    text = doc.text
    if not isinstance(mapping, yaml.MappingNode):
        raise EditError(f"cannot add {key!r}: its parent is not a mapping", location=_where(label, doc, mapping))
    if mapping.flow_style:
        close = doc.offset(mapping.end_mark) - 1
        if text[close] != "}":
            raise EditError(f"cannot add {key!r} to this flow mapping in place", location=_where(label, doc, mapping))
        piece = f"{_render_key(key)}: {_render_flow(value)}"
        before = text[:close].rstrip()
        sep = "" if before.endswith("{") else ", "
        return before + sep + piece + text[close:]
    if not mapping.value:
        raise EditError(f"cannot add {key!r} to an empty mapping in place", location=_where(label, doc, mapping))
    column = mapping.value[0][0].start_mark.column
    last = _last_leaf(mapping.value[-1][1])
    end = doc.offset(last.end_mark)
    # a value that ends at column 0 ended on the previous line (block collections, block scalars)
    at = end if last.end_mark.column == 0 else doc.line_end(end)
    lines = _render_block(key, value, column, _indent_step(doc, mapping))
    prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
    return text[:at] + prefix + lines + text[at:]


def _delete(doc: _Text, mapping: yaml.Node, entry: tuple[yaml.Node, yaml.Node], label: str) -> str:
    text = doc.text
    key_node, value = entry
    assert isinstance(mapping, yaml.MappingNode)
    k_start, v_end = doc.offset(key_node.start_mark), doc.offset(value.end_mark)
    if mapping.flow_style:
        index = [k for k, _ in mapping.value].index(key_node)
        if index + 1 < len(mapping.value):
            return text[:k_start] + text[doc.offset(mapping.value[index + 1][0].start_mark) :]
        if index > 0:
            prev_end = doc.offset(mapping.value[index - 1][1].end_mark)
            return text[:prev_end] + text[v_end:]
        return text[:k_start] + text[v_end:].lstrip(" ")
    line_start = doc.line_start(k_start)
    if text[line_start:k_start].strip():
        raise EditError(f"cannot remove {key_node.value!r} in place", location=_where(label, doc, key_node))
    stop = v_end if value.end_mark.column == 0 else doc.line_end(v_end)
    return text[:line_start] + text[stop:]


# --- rendering new values ----------------------------------------------------------------------


def _plain_ok(value: str) -> bool:
    """Whether value reads back as the same string when written without quotes."""
    if not value or value != value.strip() or "\n" in value or " #" in value or ": " in value:
        return False
    try:
        loaded = load_text(f"k: {value}\n")
    except yaml.YAMLError:
        return False
    return isinstance(loaded, dict) and loaded.get("k") == value and isinstance(loaded.get("k"), str)


def _render_scalar(value: Value, style: str | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    text = str(value)
    if style == "'" and "\n" not in text:
        return "'" + text.replace("'", "''") + "'"
    if style == '"' or not _plain_ok(text):
        return json.dumps(text, ensure_ascii=False)
    return text


def _render_key(key: str) -> str:
    return key if _plain_ok(key) else json.dumps(key, ensure_ascii=False)


def _render_flow(value: Value) -> str:
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_render_key(k)}: {_render_flow(v)}" for k, v in value.items()) + "}"
    return _render_scalar(value, None)


def _render_block(key: str, value: Value, column: int, step: int) -> str:
    pad = " " * column
    if isinstance(value, Mapping):
        if not value:
            return f"{pad}{_render_key(key)}: {{}}\n"
        inner = "".join(_render_block(k, v, column + step, step) for k, v in value.items())
        return f"{pad}{_render_key(key)}:\n{inner}"
    return f"{pad}{_render_key(key)}: {_render_scalar(value, None)}\n"


# --- proving the edit --------------------------------------------------------------------------


def _plain(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data


def _load(text: str, label: str) -> Any:
    try:
        return _plain(load_text(text))
    except yaml.YAMLError as exc:
        raise EditError(f"{label} is not valid YAML: {exc}") from None


def _expected(data: Any, edit: Edit) -> None:
    node = data
    for key in edit.path[:-1]:
        if not isinstance(node, dict):
            return
        if key not in node:
            if isinstance(edit, DeleteKey):
                return
            node[key] = {}
        node = node[key]
    if not isinstance(node, dict):
        return
    if isinstance(edit, DeleteKey):
        node.pop(edit.path[-1], None)
    else:
        node[edit.path[-1]] = _plain(edit.value)


def _verify(before: str, after: str, edits: Sequence[Edit], label: str) -> None:
    """Reload both texts as gitops-ml reads them: the data must differ by the edits only."""
    expected = _load(before, label)
    for edit in edits:
        _expected(expected, edit)
    got = _load(after, label)
    if got != expected:  # a bug here must never reach a user's file
        raise EditError(
            f"{label}: the in-place edit did not produce the intended document; nothing was written",
            hint="edit the file by hand and report this as a bug",
        )

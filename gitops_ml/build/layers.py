"""Image layers written on the build host as tar files, deterministically: the locked packages installed
by uv (cached by lock and platform, so every model with the same lock shares one layer), the runtime
wheel unpacked, the scoring code, the artifact (with the SBOM), and a small system layer (the user, the
venv's links to the base image's Python).

Fixed times, owners, modes and entry order: the same inputs give byte-identical layers on any machine.
Never talks to Docker and never prints.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Mapping, Union

from gitops_ml.adapters import uv
from gitops_ml.build.lock import uv_cache
from gitops_ml.validate.locks import Lock

# fixed file times make layers byte-identical however often they are written
CONTEXT_MTIME = 315532800  # 1980-01-01, the oldest time a zip (wheel) can hold
VENV = "/opt/gitops-ml/venv"
RUNTIME_DIR = "/opt/gitops-ml/runtime"
SBOM_PATH = "/opt/gitops-ml/sbom.cdx.json"
USER, UID = "gitops-ml", 10001
LAYOUT = "layers v1"  # bump when what a cached layer holds changes

Source = Union[bytes, Path]


@dataclass(frozen=True)
class Entry:
    """One file, directory or symbolic link of a layer, at its path in the image (no leading /)."""

    path: str
    data: Source | None = None  # None: a directory (or a link when `link` is set)
    mode: int = 0o644
    link: str = ""


@dataclass(frozen=True)
class Layer:
    """A layer tar on disk and its uncompressed digest (the image config's diff_id)."""

    name: str
    path: Path
    diff_id: str
    size: int


def site_packages(python: str) -> str:
    return f"{VENV}/lib/python{python}/site-packages"


def directories(path: str) -> list[Entry]:
    """Directory entries for path and its parents under /opt/gitops-ml (the base image owns the rest)."""
    out, parts = [], path.strip("/").split("/")
    for i in range(len(parts)):
        sub = "/".join(parts[: i + 1])
        if sub.startswith("opt/gitops-ml"):
            out.append(Entry(sub, None, 0o755))
    return out


class _Digesting(io.RawIOBase):
    def __init__(self, sink: BinaryIO) -> None:
        self.sink, self.hash, self.size = sink, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.hash.update(data)
        self.sink.write(data)
        self.size += len(data)
        return len(data)


def write_layer(name: str, entries: Iterable[Entry], dest: Path) -> Layer:
    """Write entries as a tar at dest: sorted by path, each directory once, uid/gid 0, fixed mtime."""
    unique: dict[str, Entry] = {}
    for entry in entries:
        unique.setdefault(entry.path.strip("/"), entry)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "wb") as raw:
        sink = _Digesting(raw)
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(unique, key=lambda p: p.split("/")):
                entry = unique[path]
                info = tarfile.TarInfo(path)
                info.mtime, info.uid, info.gid, info.uname, info.gname = CONTEXT_MTIME, 0, 0, "", ""
                if entry.link:
                    info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.link, 0o777
                    tar.addfile(info)
                elif entry.data is None:
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                elif isinstance(entry.data, bytes):
                    info.size, info.mode = len(entry.data), entry.mode
                    tar.addfile(info, io.BytesIO(entry.data))
                else:
                    info.size, info.mode = entry.data.stat().st_size, entry.mode
                    with open(entry.data, "rb") as fh:
                        tar.addfile(info, fh)
    return Layer(name, dest, "sha256:" + sink.hash.hexdigest(), sink.size)


def tree_entries(root: Path, prefix: str) -> list[Entry]:
    """Entries for every file, link and directory under root, placed at prefix in the image."""
    out = directories(prefix)
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        here = prefix.strip("/") if rel == "." else f"{prefix.strip('/')}/{rel.replace(os.sep, '/')}"
        out.append(Entry(here, None, 0o755))
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            info = full.lstat()
            if stat.S_ISLNK(info.st_mode):
                out.append(Entry(f"{here}/{name}", None, 0o777, os.readlink(full)))
            elif stat.S_ISREG(info.st_mode):
                out.append(Entry(f"{here}/{name}", full, 0o755 if info.st_mode & 0o111 else 0o644))
    return out


def _cached(cache: Path, key: str, name: str) -> Layer | None:
    meta = cache / "layers" / f"{key}.json"
    if meta.is_file() and (cache / "layers" / f"{key}.tar").is_file():
        data = json.loads(meta.read_text(encoding="utf-8"))
        return Layer(name, cache / "layers" / f"{key}.tar", data["diff_id"], int(data["size"]))
    return None


def _store(cache: Path, key: str, layer: Layer) -> Layer:
    target = cache / "layers" / f"{key}.tar"
    os.replace(layer.path, target)
    meta = cache / "layers" / f"{key}.json"
    tmp = meta.with_suffix(".json.part")
    tmp.write_text(json.dumps({"diff_id": layer.diff_id, "size": layer.size}), encoding="utf-8")
    os.replace(tmp, meta)
    return Layer(layer.name, target, layer.diff_id, layer.size)


def dependency_layer(lock: Lock, python: str, cache: Path) -> Layer:
    """The locked packages installed by uv for the image's platform, every hash checked; one layer per
    lock and Python, cached, so a second model with the same lock costs nothing."""
    key = "deps-" + hashlib.sha256(f"{LAYOUT}\n{python}\n{lock.platform}\n{lock.text}".encode()).hexdigest()[:32]
    found = _cached(cache, key, "dependencies")
    if found:
        return found
    (cache / "layers").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache / "layers", prefix=".deps-") as tmp:
        lock_file = Path(tmp) / "requirements.lock"
        lock_file.write_text(lock.text, encoding="utf-8")
        site = Path(tmp) / "site"
        uv.install_lock(lock_file, site, uv.Target(python, lock.platform), cache=uv_cache(cache))
        entries = _site_entries(site, python)
        layer = write_layer("dependencies", entries, Path(tmp) / "layer.tar")
        return _store(cache, key, layer)


def _site_entries(site: Path, python: str) -> list[Entry]:
    """uv's --target tree as the venv's site-packages; its console scripts go to the venv's bin/ with
    the image's interpreter in their first line (uv wrote this machine's)."""
    scripts = site / "bin"
    entries = [e for e in tree_entries(site, site_packages(python)) if not (e.path + "/").startswith(site_packages(python).strip("/") + "/bin/")]
    entries = [e for e in entries if e.path != site_packages(python).strip("/") + "/bin"]
    entries += directories(f"{VENV}/bin")
    if scripts.is_dir():
        for script in sorted(scripts.iterdir()):
            data = script.read_bytes()
            if data.startswith(b"#!"):
                data = f"#!{VENV}/bin/python".encode() + data[data.index(b"\n"):]
            entries.append(Entry(f"{VENV.strip('/')}/bin/{script.name}", data, 0o755))
    return entries


def runtime_layer(wheel: Path, cache: Path) -> Layer:
    """The gitops-ml runtime wheel unpacked at RUNTIME_DIR (it is pure Python: unpacking is installing)."""
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    key = "runtime-" + hashlib.sha256(f"{LAYOUT}\n{digest}".encode()).hexdigest()[:32]
    found = _cached(cache, key, "runtime")
    if found:
        return found
    entries = directories(RUNTIME_DIR)
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.is_dir():
                continue
            path = posixpath.normpath(f"{RUNTIME_DIR.strip('/')}/{info.filename}")
            entries += [Entry(d, None) for d in _parents(path)]
            entries.append(Entry(path, zf.read(info), 0o644))
    (cache / "layers").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache / "layers", prefix=".runtime-") as tmp:
        return _store(cache, key, write_layer("runtime", entries, Path(tmp) / "layer.tar"))


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts)) if "/".join(parts[: i + 1]).startswith("opt/gitops-ml")]


def files_layer(name: str, files: Mapping[str, bytes], at: str, dest: Path) -> Layer:
    """Files keyed by path relative to `at` (the model directory in the image)."""
    entries = directories(at)
    for rel, data in files.items():
        path = f"{at.strip('/')}/{rel}"
        entries += [Entry(d, None) for d in _parents(path)]
        entries.append(Entry(path, data, 0o644))
    return write_layer(name, entries, dest)


def system_layer(passwd: bytes, group: bytes, python_path: str, python: str, dest: Path) -> Layer:
    """The unprivileged user appended to the base image's passwd and group, and the venv pointing at its Python."""
    user = f"{USER}:x:{UID}:{UID}:gitops-ml:/tmp:/usr/sbin/nologin\n".encode()
    grp = f"{USER}:x:{UID}:\n".encode()
    name = posixpath.basename(python_path)
    cfg = f"home = {posixpath.dirname(python_path)}\ninclude-system-site-packages = false\nversion = {python}\n".encode()
    entries = [
        Entry("etc/passwd", _append(passwd, user)),
        Entry("etc/group", _append(group, grp)),
        *directories(f"{VENV}/bin"),
        *directories(site_packages(python)),
        Entry(f"{VENV.strip('/')}/pyvenv.cfg", cfg),
        Entry(f"{VENV.strip('/')}/bin/{name}", None, 0o777, python_path),
        *(Entry(f"{VENV.strip('/')}/bin/{alias}", None, 0o777, name) for alias in ("python", "python3") if alias != name),
    ]
    return write_layer("system", entries, dest)


def _append(text: bytes, line: bytes) -> bytes:
    if line in text.splitlines(keepends=True):
        return text
    return text + (b"" if not text or text.endswith(b"\n") else b"\n") + line


def copy_layer(layer: Layer, dest: Path) -> None:
    """Put a layer tar into a build context (a hard link when the cache is on the same file system)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(layer.path, dest)
    except OSError:
        shutil.copyfile(layer.path, dest)

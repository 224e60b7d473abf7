"""Rendered files -> the render root on disk: atomic writes, owned-files bookkeeping, `--check`.

The render root holds `.gitops-ml-render.json`, the list of every file the tool wrote with its
sha256 and the input key of each unit. Only listed files are ever replaced or removed; a file the
tool did not write is left untouched and reported. Nothing here renders or prints.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

import orjson

from gitops_ml import __version__
from gitops_ml.errors import LoadError, Location, RenderError
from gitops_ml.repo.handle import OWNERSHIP_FILE
from gitops_ml.repo.sources import read_regular

FORMAT = 1
FOREIGN_LIMIT = 100  # more unknown files than this: the directory is not a render root at all


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class UnitRecord:
    """What one unit (a base, an endpoint, an environment) was rendered from and what it wrote."""

    key: str
    files: list[str]
    route: list[str] = field(default_factory=list)  # [environment, cluster, host, path, source] when exposed


@dataclass
class Ownership:
    """The content of the ownership file: files by path with their sha256, and units."""

    files: dict[str, str] = field(default_factory=dict)
    units: dict[str, UnitRecord] = field(default_factory=dict)
    inputs: str = ""  # digest of the repository-wide inputs (gitops-ml.yaml, tool version)
    version: str = __version__

    def to_bytes(self) -> bytes:
        doc = {
            "comment": "Written by `gitops-ml render`: the files it owns in this directory. Do not edit.",
            "format": FORMAT,
            "generator": f"gitops-ml {self.version}",
            "inputs": self.inputs,
            "files": dict(sorted(self.files.items())),
            "units": {
                k: {"key": u.key, "files": u.files, **({"route": u.route} if u.route else {})}
                for k, u in sorted(self.units.items())
            },
        }
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def read_ownership(render_dir: Path, label: str) -> Ownership | None:
    """The ownership file of a render root, or None when there is none."""
    path = render_dir / OWNERSHIP_FILE
    if os.path.lexists(path) and not os.path.isfile(path):
        raise LoadError(
            "ownership file is not a regular file",
            location=Location(f"{label}/{OWNERSHIP_FILE}"),
            hint=f"it is written by `gitops-ml render`; restore it from git (`git checkout -- {label}/{OWNERSHIP_FILE}`)",
        )
    raw = read_regular(path)
    if raw is None:
        return None
    try:
        doc = orjson.loads(raw)
        files = {str(k): str(v) for k, v in doc["files"].items()}
        units = {str(k): UnitRecord(str(u["key"]), list(u["files"]), list(u.get("route", []))) for k, u in doc["units"].items()}
        return Ownership(files, units, str(doc.get("inputs", "")), str(doc.get("generator", "")).rpartition(" ")[2])
    except (ValueError, KeyError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
        raise LoadError(
            f"ownership file is damaged ({type(exc).__name__}: {exc})",
            location=Location(f"{label}/{OWNERSHIP_FILE}"),
            hint=f"it is written by `gitops-ml render`; restore it from git (`git checkout -- {label}/{OWNERSHIP_FILE}`)",
        ) from None


def list_files(render_dir: Path) -> list[str]:
    """Every file under the render root, as sorted POSIX paths relative to it."""
    return sorted(_walk(render_dir))


def _walk(render_dir: Path) -> Iterator[str]:
    """Files under a directory in a stable order (directories and names sorted), relative to it."""
    top = os.path.join(render_dir, "")  # "/" already ends with the separator
    cut = len(top)
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        rel_dir = dirpath[cut:].replace(os.sep, "/")
        prefix = rel_dir + "/" if rel_dir else ""
        for name in sorted(filenames):
            yield prefix + name


def _files_of_render_root(render_dir: Path, known: Callable[[str], bool], label: str) -> list[str]:
    """list_files, but a directory holding many files gitops-ml knows nothing of is refused as soon
    as that is clear: `--out` at a home or system directory must not read the whole disk first."""
    out, unknown = [], []
    for path in _walk(render_dir):
        out.append(path)
        if not known(path):
            unknown.append(path)
            if len(unknown) > FOREIGN_LIMIT:
                listed = ", ".join(_shown(label, p) for p in unknown[:5])
                raise RenderError(
                    f"{_shown(label, '')} holds more than {FOREIGN_LIMIT} files gitops-ml did not write ({listed}, ...); "
                    "it is not a render root, and nothing was changed",
                    hint=f"render into a new or empty directory, or one gitops-ml rendered before (it holds {OWNERSHIP_FILE})",
                )
    return sorted(out)


def _shown(label: str, path: str) -> str:
    """A path under the render root as the user should read it."""
    return label.rstrip("/") + "/" + path


@dataclass
class Difference:
    """One file whose state differs from what render would write."""

    path: str  # relative to the render root
    status: str  # stale (content differs), missing, extra (written before, no longer rendered), leftover, foreign

    def describe(self, label: str) -> str:
        words = {
            "stale": "differs from what `gitops-ml render` writes (edited by hand, or inputs changed)",
            "missing": "is missing",
            "extra": "is no longer rendered and should be removed",
            "foreign": "was not written by gitops-ml (left untouched)",
            "leftover": "is a temporary file of an interrupted render and should be removed",
        }
        return f"{_shown(label, self.path)}: {words[self.status]}"


@dataclass
class Changes:
    """What a render would do to the render root."""

    differences: list[Difference] = field(default_factory=list)
    unchanged: int = 0

    def of(self, status: str) -> list[str]:
        return [d.path for d in self.differences if d.status == status]


class StatCache:
    """sha256 of files under a render root, trusted while size, mtime and inode are unchanged.

    Git's index does the same: hashing 25,000 files costs more than stat-ing them. An entry whose
    mtime is not older than the moment it was recorded is "racy" (could change within the clock's
    granularity) and is hashed again. Kept in the user's cache directory, never in the repository.
    """

    def __init__(self, directory: Path, purpose: str = "render") -> None:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        key = hashlib.sha256(f"{purpose}\0{directory.resolve()}".encode()).hexdigest()[:24]
        self.path = base / "gitops-ml" / "render-stat" / f"{key}.json"
        self.entries: dict[str, list[int | str]] = {}
        self.recorded_ns = 0
        try:
            doc = orjson.loads(self.path.read_bytes())
            self.entries, self.recorded_ns = dict(doc["entries"]), int(doc["recorded_ns"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        self.fresh: dict[str, list[int | str]] = {}

    def digest(self, full: str, rel: str, st: os.stat_result | None = None) -> str:
        if st is None:
            st = os.stat(full)
        entry = self.entries.get(rel)
        if (
            entry is not None
            and entry[0] == st.st_size
            and entry[1] == st.st_mtime_ns
            and entry[2] == st.st_ino
            and st.st_mtime_ns < self.recorded_ns - 1_000_000_000
        ):
            self.fresh[rel] = entry
            return str(entry[3])
        with open(full, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        self.fresh[rel] = [st.st_size, st.st_mtime_ns, st.st_ino, digest]
        return digest

    def save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps({"recorded_ns": time.time_ns(), "entries": self.fresh}))
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs time


def compare(
    render_dir: Path,
    expected: Mapping[str, bytes | str],
    previous: Ownership | None,
    *,
    keep: frozenset[str] = frozenset(),
    cache: StatCache | None = None,
    label: str = "",
) -> Changes:
    """Disk against the expected files (bytes, or sha256 for units that were not re-rendered).

    Without a cache every file is read and compared byte for byte. `keep` lists paths owned by
    units outside this render (other environments under --env).
    """
    owned = set(previous.files) if previous else set()

    def known(path: str) -> bool:
        return path in expected or path in owned or path in keep or is_temporary(path)

    on_disk = _files_of_render_root(render_dir, known, label) if render_dir.is_dir() else []
    present = set(on_disk)
    changes = Changes()
    base = os.path.join(render_dir, "")
    for path in sorted(expected):
        want = expected[path]
        if path not in present:
            changes.differences.append(Difference(path, "missing"))
            continue
        full = base + path
        st = os.lstat(full)
        if not stat.S_ISREG(st.st_mode):
            same = False  # render writes regular files: a link, a FIFO or a socket is never read
        elif cache is not None:
            same = cache.digest(full, path, st) == (want if isinstance(want, str) else sha256(want))
        else:
            with open(full, "rb") as fh:
                found = fh.read()
            same = (sha256(found) == want) if isinstance(want, str) else found == want
        if not same:
            # a file the tool never wrote is foreign even when render would put something there
            changes.differences.append(Difference(path, "stale" if path in owned or path == OWNERSHIP_FILE else "foreign"))
        else:
            changes.unchanged += 1
    for path in on_disk:
        if path in expected or path in keep:
            continue
        status = "extra" if path in owned else "leftover" if is_temporary(path) else "foreign"
        changes.differences.append(Difference(path, status))
    changes.differences.sort(key=lambda d: d.path)
    return changes


def differs_in_input_keys_only(found: bytes, expected: bytes) -> bool:
    """Whether two ownership files differ at most in their input keys (the repository-wide digest
    and each unit's key): a comment in a deployment file changes a key, never a manifest."""

    def without_keys(raw: bytes) -> object:
        doc = orjson.loads(raw)
        if not isinstance(doc, dict) or not isinstance(doc.get("units"), dict):
            return doc
        units = {name: {k: v for k, v in unit.items() if k != "key"} if isinstance(unit, dict) else unit for name, unit in doc["units"].items()}
        return {**{k: v for k, v in doc.items() if k != "inputs"}, "units": units}

    try:
        return without_keys(found) == without_keys(expected)
    except orjson.JSONDecodeError:
        return False


@dataclass
class WriteResult:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0


def apply(render_dir: Path, files: Mapping[str, bytes], changes: Changes, label: str, previous: Ownership | None = None) -> WriteResult:
    """Write missing and stale files and remove extra ones; refuse when foreign files are present.

    Safe to kill at any moment: before the first file is touched, the ownership file is replaced
    by one that already owns every path this run writes or removes, and every file appears whole
    (a temporary file renamed over it). A run cut short leaves only files the next run owns and
    temporary files it recognises as its own, so the next `render` completes the render root."""
    foreign = changes.of("foreign")
    if foreign:
        listed = ", ".join(_shown(label, p) for p in foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise RenderError(
            f"the render root contains {len(foreign)} file(s) gitops-ml did not write: {listed}; nothing was changed",
            location=Location(_shown(label, foreign[0])),
            hint=f"{_shown(label, '')} is owned by `gitops-ml render`: move those files elsewhere (they were left untouched)",
        )
    result = WriteResult(unchanged=changes.unchanged)
    made: set[Path] = set()
    touched = [d for d in changes.differences if d.path != OWNERSHIP_FILE and d.status in ("missing", "stale", "extra")]
    if touched and OWNERSHIP_FILE in files:
        removed = {d.path: (previous.files.get(d.path, "") if previous else "") for d in touched if d.status == "extra"}
        try:
            render_dir.mkdir(parents=True, exist_ok=True)
            _write(render_dir / OWNERSHIP_FILE, _owning_also(files[OWNERSHIP_FILE], removed), replace=True)
        except OSError as exc:
            raise RenderError(
                f"cannot be written: {exc.strerror or exc}; nothing was changed",
                location=Location(_shown(label, OWNERSHIP_FILE)),
                hint="make the render root writable, or move what is in the way",
            ) from exc
    # the final ownership file goes last: until then the one written above owns the whole run
    for diff in sorted(changes.differences, key=lambda d: d.path == OWNERSHIP_FILE):
        target = render_dir / diff.path
        try:
            if diff.status in ("missing", "stale"):
                if target.parent not in made:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    made.add(target.parent)
                _write(target, files[diff.path], replace=diff.status == "stale" or diff.path == OWNERSHIP_FILE)
                result.written.append(diff.path)
            elif diff.status == "extra":
                target.unlink(missing_ok=True)
                result.removed.append(diff.path)
                _prune_empty_dirs(target.parent, render_dir)
            elif diff.status == "leftover":
                target.unlink(missing_ok=True)
                _prune_empty_dirs(target.parent, render_dir)
        except OSError as exc:
            # e.g. a directory, or a file where a directory must go: the user must move it
            why = "a directory is in the way" if target.is_dir() else exc.strerror or str(exc)
            raise RenderError(
                f"cannot be written: {why}; {len(result.written)} file(s) were written before this one",
                location=Location(_shown(label, diff.path)),
                hint="move what is in the way; the next `gitops-ml render` completes the render root",
            ) from exc
    return result


TEMPORARY_SUFFIX = ".gitops-ml-tmp"


def is_temporary(path: str) -> bool:
    """Whether a path under the render root is one of render's own temporary files."""
    name = path.rsplit("/", 1)[-1]
    return name.startswith(".") and name.endswith(TEMPORARY_SUFFIX)


def _owning_also(manifest: bytes, paths: Mapping[str, str]) -> bytes:
    """The ownership file of this run, owning as well the files it is about to remove."""
    if not paths:
        return manifest
    doc = orjson.loads(manifest)
    doc["files"] = dict(sorted({**doc["files"], **paths}.items()))
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def _write(target: Path, data: bytes, *, replace: bool) -> None:
    """A whole file or none, for readers and under kill -9: a temporary file renamed over the
    target, new files included (an empty or half-written file must never look like output). No
    fsync, unlike write_atomic: at 25,000 files fsync is most of a render, and git, not this
    directory, is the durable copy; a render cut short is repaired by the next one."""
    tmp = target.with_name(f".{target.name}{TEMPORARY_SUFFIX}")
    with open(tmp, "wb") as fh:
        fh.write(data)
    if not replace and os.path.lexists(target):
        os.unlink(tmp)
        raise FileExistsError(17, "File exists", str(target))
    os.replace(tmp, target)


def _prune_empty_dirs(directory: Path, stop: Path) -> None:
    while directory != stop and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent

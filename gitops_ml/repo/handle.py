"""The repository handle a verb opens once and hands down: where the repository is, its
gitops-ml.yaml parsed once, the working tree and the git checkout behind it, the render root, any
commit's tree behind the same FileSource interface, and the documents loaded lazily.

Stages take a `Repository` instead of a bare path and never re-derive these. It reads; it never
validates cross-file rules and never writes (a stage that writes calls `refresh()` afterwards).
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import TYPE_CHECKING, Callable, TypeVar

from gitops_ml.errors import LoadError, Location
from gitops_ml.repo.loading import RepositoryTree, load_tree, parse_yaml
from gitops_ml.repo.sources import FileSource, WorkTree, read_regular
from gitops_ml.types import REPOSITORY_FILE, Kind, RepositorySpec

if TYPE_CHECKING:
    from gitops_ml.adapters.git import Checkout, CommitTree

T = TypeVar("T")

DEFAULT_RENDER_ROOT = "deploy"
OWNERSHIP_FILE = ".gitops-ml-render.json"


def discover_root(path: Path) -> Path:
    """The directory holding gitops-ml.yaml: `path` itself, or the nearest parent up to the root of
    the git work tree (as git finds .git), so every verb works from a model's directory too. When
    there is none, `path` unchanged, and the verb reports what is missing there."""
    start = path.absolute()
    for candidate in (start, *start.parents):
        if (candidate / REPOSITORY_FILE).is_file():
            return path if candidate == start else candidate
        if (candidate / ".git").exists():
            break
    return path


class Repository:
    """A gitops-ml repository at `root` (which may lack gitops-ml.yaml: validation reports that)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._worktree: WorkTree | None = None
        self._checkout: Checkout | None = None
        self._commits: dict[str, CommitTree] = {}
        self._config: tuple[RepositorySpec | None] | None = None
        self._tree: RepositoryTree | None = None
        self._memo: dict[object, object] = {}

    @classmethod
    def open(cls, path: Path) -> "Repository":
        """The repository containing path, found upwards as git finds .git."""
        return cls(discover_root(Path(path)))

    def __repr__(self) -> str:
        return f"Repository({str(self.root)!r})"

    # --- files -------------------------------------------------------------------------------

    @property
    def worktree(self) -> WorkTree:
        """The working tree's files, without what git ignores (asked once per handle)."""
        if self._worktree is None:
            self._worktree = WorkTree(self.root)
        return self._worktree

    def at(self, rev: str) -> "CommitTree":
        """The files of a commit (a branch, tag or id) behind the FileSource interface of the
        working tree; the same revision is resolved once per handle."""
        found = self._commits.get(rev)
        if found is None:
            from gitops_ml.adapters.git import CommitTree, resolve_commit  # noqa: PLC0415 - GitPython only when history is asked

            checkout = self.checkout()
            found = CommitTree(checkout.repo, resolve_commit(checkout.repo, rev), checkout.prefix)
            self._commits[rev] = found
        return found

    def tree(self) -> RepositoryTree:
        """Every document of the working tree (gitops-ml.yaml, model and deployment files), loaded once."""
        if self._tree is None:
            self._tree = load_tree(self.worktree)
        return self._tree

    def source(self, rev: str | None = None) -> FileSource:
        """The working tree (rev None) or a commit: one interface for both."""
        return self.worktree if rev is None else self.at(rev)

    # --- git ---------------------------------------------------------------------------------

    def checkout(self) -> "Checkout":
        """The git repository holding the root and the root's path inside it; RegistryError outside git."""
        if self._checkout is None:
            from gitops_ml.adapters.git import open_checkout  # noqa: PLC0415 - GitPython only when history is asked

            self._checkout = open_checkout(self.root)
        return self._checkout

    def git_path(self, rel: str) -> str:
        """A repository-relative path as git names it (under the root's prefix in the work tree)."""
        prefix = self.checkout().prefix
        return posixpath.join(prefix, rel) if prefix else rel

    # --- gitops-ml.yaml ----------------------------------------------------------------------

    @property
    def config(self) -> RepositorySpec | None:
        """gitops-ml.yaml as typed settings when it is valid on its own; None lets validation say why."""
        if self._config is None:
            self._config = (self._read_config(),)
        return self._config[0]

    def _read_config(self) -> RepositorySpec | None:
        raw = read_regular(self.root / REPOSITORY_FILE)
        if raw is None:
            return None
        try:
            doc = parse_yaml(REPOSITORY_FILE, raw, Kind.REPOSITORY)
        except LoadError:
            return None
        from gitops_ml.repo import catalog  # noqa: PLC0415 - jsonschema loads only when settings are read

        if not isinstance(doc.data, dict) or not catalog.is_valid(Kind.REPOSITORY, doc.data):
            return None
        return RepositorySpec.from_doc(doc.data)

    @property
    def render_root(self) -> str:
        """The render root, relative to the root ("deploy" when gitops-ml.yaml cannot say)."""
        config = self.config
        return config.render_root if config is not None else DEFAULT_RENDER_ROOT

    @property
    def render_dir(self) -> Path:
        return self.root / self.render_root

    @property
    def renders_committed(self) -> bool:
        """Whether this repository keeps its render (the render root holds an ownership file)."""
        return (self.render_dir / OWNERSHIP_FILE).is_file()

    # --- locating ----------------------------------------------------------------------------

    def locate(self, path: str, json_path: list[str | int]) -> Location:
        """Where a value of a working-tree YAML file is; the file alone when it cannot be read."""
        try:
            return parse_yaml(path, (self.root / path).read_bytes()).locate(json_path)
        except (OSError, LoadError):
            return Location(path)

    # --- what later stages derive, once per handle ------------------------------------------

    def remember(self, key: object, make: Callable[[], T]) -> T:
        """make() the first time key is asked, the same object afterwards (until `refresh`): the
        validated specs, for one, are built once per verb however many stages need them."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]  # type: ignore[return-value]

    def refresh(self) -> None:
        """Forget what was read of the working tree: called after a stage wrote to it."""
        self._config = None
        self._tree = None
        self._memo.clear()  # the worktree's list of ignored files stays: an edit changes no .gitignore

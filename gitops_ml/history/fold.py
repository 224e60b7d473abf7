"""The registry as a fold over events read from git (pure: no git, no files, no printing).

Events come oldest first, grouped by commit: a model.yaml that changed (a version is registered
the first time model.yaml carries it) and a deployment file that changed (an environment's pin).
A tracking deployment (`model: iris`) runs whatever version is newest at each commit; a pinned one
(`model: iris@1.2.0`) runs the pinned version.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gitops_ml.types import EnvironmentName, ModelName, ModelPin, ModelSpec, Version


@dataclass(frozen=True)
class CommitInfo:
    """Who changed the registry, when (ISO 8601, the date it landed on the branch) and in which commit."""

    sha: str
    date: str
    author: str
    email: str
    subject: str = ""


@dataclass(frozen=True)
class ModelChanged:
    """models/<model>/model.yaml changed; spec is None when it was deleted or cannot be read."""

    spec: ModelSpec | None


@dataclass(frozen=True)
class PinChanged:
    """deployments/<environment>/<model>.yaml changed; pin is None when the file was deleted."""

    environment: EnvironmentName
    pin: ModelPin | None


Event = ModelChanged | PinChanged


@dataclass(frozen=True)
class CommitEvents:
    commit: CommitInfo
    events: tuple[Event, ...]


@dataclass(frozen=True)
class Run:
    """An environment ran a version from one commit until another (None: it still does)."""

    environment: EnvironmentName
    version: Version
    since: CommitInfo
    until: CommitInfo | None = None


@dataclass(frozen=True)
class VersionRecord:
    """A registered version: the commit that set it, its model.yaml, and where it ran."""

    version: Version
    commit: CommitInfo
    spec: ModelSpec
    runs: tuple[Run, ...] = ()
    tag_commit: str | None = None  # where the `<model>@v<version>` tag points, when there is one

    @property
    def tagged(self) -> bool:
        return self.tag_commit == self.commit.sha


@dataclass(frozen=True)
class ModelHistory:
    """Every version of one model, oldest first, and what each environment runs at the end."""

    model: ModelName
    versions: tuple[VersionRecord, ...]
    running: Mapping[EnvironmentName, Run] = field(default_factory=dict)
    complete: bool = True  # False when a shallow clone cut history: older versions are missing

    def get(self, version: Version) -> VersionRecord | None:
        return next((r for r in self.versions if r.version == version), None)

    @property
    def newest(self) -> VersionRecord | None:
        return max(self.versions, key=lambda r: r.version) if self.versions else None


def fold_history(model: ModelName, history: Iterable[CommitEvents], tags: Mapping[Version, str] | None = None) -> ModelHistory:
    """Fold a model's commits (oldest first) into its versions and their runs; tags maps
    version -> commit of its registration tag."""
    registered: dict[Version, tuple[CommitInfo, ModelSpec]] = {}
    runs: dict[Version, list[Run]] = {}
    current: Version | None = None
    pins: dict[EnvironmentName, ModelPin] = {}
    running: dict[EnvironmentName, Run] = {}

    for step in history:
        for event in step.events:
            if isinstance(event, ModelChanged):
                current = event.spec.version if event.spec is not None else None
                if event.spec is not None and event.spec.version not in registered:
                    registered[event.spec.version] = (step.commit, event.spec)
            elif event.pin is None or event.pin.model != model:
                pins.pop(event.environment, None)
            else:
                pins[event.environment] = event.pin
        for env in sorted(set(pins) | set(running)):
            pin = pins.get(env)
            target = (pin.version or current) if pin is not None else None
            previous = running.get(env)
            if previous is not None and previous.version == target:
                continue
            if previous is not None:
                runs.setdefault(previous.version, []).append(Run(env, previous.version, previous.since, step.commit))
                del running[env]
            if target is not None:
                running[env] = Run(env, target, step.commit)
    for run in running.values():
        runs.setdefault(run.version, []).append(run)

    tags = tags or {}
    versions = tuple(
        VersionRecord(
            version,
            commit,
            spec,
            tuple(sorted(runs.get(version, []), key=lambda r: (r.since.date, r.environment))),
            tags.get(version),
        )
        for version, (commit, spec) in registered.items()
    )
    return ModelHistory(model, versions, dict(sorted(running.items())))

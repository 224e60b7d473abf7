"""The `status` use case: git's endpoints, the cluster's objects (through adapters.cluster), compared.

Reads are list calls per namespace and kind (never one per endpoint), issued concurrently;
`watch_status` then follows the same lists with the Kubernetes watch API until every endpoint
settles or the time is up. Nothing here prints: a watcher gets each new report through a callback.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable

from gitops_ml.adapters import cluster as kube
from gitops_ml.adapters import git as gitx
from gitops_ml.errors import EngineNotInstalled, NamespaceNotFound, RegistryError, UsageError
from gitops_ml.repo.handle import Repository
from gitops_ml.status import observed
from gitops_ml.status.compare import compare
from gitops_ml.status.desired import load_desired
from gitops_ml.status.model import Desired, Head, Relation, Snapshot, StatusReport
from gitops_ml.types import Engine

LIST_WORKERS = 8
MIN_STREAM_SECONDS = 1.0  # a watch that ends sooner, and empty, was cut short (a proxy, a restarting server)
MAX_RESTART_WAIT = 10.0


@dataclass(frozen=True)
class StatusRequest:
    repo: Repository
    environments: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    cluster: kube.ClusterSettings = kube.ClusterSettings()
    timeout: float = 300.0  # seconds for the whole command (--watch: until every endpoint settles)


@dataclass(frozen=True)
class Read:
    """One list-and-watch the status makes: a kind in a namespace, with a label selector."""

    resource: kube.Resource
    namespace: str
    selector: str = ""


# what status reads, and so what its read-only role must allow (see rbac.py)
WORKLOAD_KINDS = (kube.DEPLOYMENTS, kube.REPLICASETS, kube.HPAS, kube.PODS)
OPTIONAL_KINDS = (kube.ROLLOUTS, kube.SCALED_OBJECTS)
ENGINE_KINDS = {Engine.ARGOCD: kube.APPLICATIONS, Engine.FLUX: kube.KUSTOMIZATIONS}
ENGINE_NAMES = {Engine.ARGOCD: "Argo CD", Engine.FLUX: "Flux"}


def _parser(resource: kube.Resource, desired: Desired) -> Callable[[dict[str, Any]], Any]:
    keys = desired.keys
    parsers: dict[kube.Resource, Callable[[dict[str, Any]], Any]] = {
        kube.DEPLOYMENTS: lambda o: observed.deployment(o, keys),
        kube.ROLLOUTS: lambda o: observed.rollout(o, keys),
        kube.REPLICASETS: lambda o: observed.replicaset(o, keys),
        kube.HPAS: observed.autoscaler,
        kube.SCALED_OBJECTS: observed.scaled_object,
        kube.PODS: observed.pod,
        kube.APPLICATIONS: lambda o: observed.application(o, keys),
        kube.KUSTOMIZATIONS: lambda o: observed.kustomization(o, keys),
    }
    return parsers[resource]


@dataclass
class _Cache:
    """The parsed objects of one Read, by name, and the resourceVersion to watch from."""

    read: Read
    parse: Callable[[dict[str, Any]], Any]
    objects: dict[str, Any] = field(default_factory=dict)
    resource_version: str = ""

    def fill(self, listing: kube.Listing) -> None:
        self.objects = {str((o.get("metadata") or {}).get("name")): self.parse(o) for o in listing.items}
        self.resource_version = listing.resource_version

    def apply(self, event: kube.WatchEvent) -> bool:
        """Apply one watch event; True when an object changed."""
        meta = event.object.get("metadata") or {}
        self.resource_version = str(meta.get("resourceVersion") or self.resource_version)
        name = str(meta.get("name"))
        if event.type in ("ADDED", "MODIFIED"):
            self.objects[name] = self.parse(event.object)
            return True
        if event.type == "DELETED":
            return self.objects.pop(name, None) is not None
        return False  # BOOKMARK: only the resourceVersion moves


class _Session:
    """One status run: git's side, the connection, and the caches of everything read."""

    def __init__(self, request: StatusRequest) -> None:
        self.request = request
        self.desired = load_desired(request.repo, request.environments, request.models)
        try:
            self.checkout: gitx.Checkout | None = request.repo.checkout()
        except RegistryError:
            self.checkout = None  # outside git: no HEAD to compare the engines' revisions with
        self.head_commit = gitx.head_commit(self.checkout.repo) if self.checkout else None
        self._relations: dict[str, Relation] = {}
        self.cluster = kube.connect(replace(request.cluster, request_timeout=min(request.cluster.request_timeout, max(1.0, request.timeout))))
        self.caches: dict[Read, _Cache] = {}
        self.missing_namespaces: frozenset[str] = frozenset()
        self.rollouts_served = False

    def close(self) -> None:
        self.cluster.close()

    # --- what to read ------------------------------------------------------------------------------

    def plan_reads(self, with_pods: bool) -> list[Read]:
        desired, cluster = self.desired, self.cluster
        engines = {env.engine for env in desired.environments}
        argo = cluster.served(kube.ROLLOUTS.group, kube.ROLLOUTS.version)
        keda = cluster.served(kube.SCALED_OBJECTS.group, kube.SCALED_OBJECTS.version)
        served = {kube.ROLLOUTS: kube.ROLLOUTS.plural in argo, kube.SCALED_OBJECTS: kube.SCALED_OBJECTS.plural in keda}
        self.rollouts_served = served[kube.ROLLOUTS]
        for engine in sorted(engines, key=lambda e: e.value):
            resource = ENGINE_KINDS[engine]
            plurals = argo if resource.group == kube.ROLLOUTS.group else cluster.served(resource.group, resource.version)
            if resource.plural not in plurals:
                names = sorted(env.name for env in desired.environments if env.engine is engine)
                raise EngineNotInstalled(
                    f"{ENGINE_NAMES[engine]} is not installed on the cluster at {cluster.server}: it does not serve "
                    f"{resource}/{resource.version}, which environment(s) {', '.join(names)} deploy with",
                    hint=f"install {ENGINE_NAMES[engine]} there, or point --context at the cluster it runs on "
                    "(with Argo CD managing remote clusters, that is Argo CD's own cluster)",
                )
        reads = []
        selector = desired.selector
        for namespace in sorted({env.namespace for env in desired.environments}):
            reads.append(Read(kube.DEPLOYMENTS, namespace, selector))
            reads.append(Read(kube.REPLICASETS, namespace, selector))
            # autoscalers are matched by their target: KEDA's HPAs do not carry render's labels
            reads.append(Read(kube.HPAS, namespace))
            if served[kube.ROLLOUTS]:
                reads.append(Read(kube.ROLLOUTS, namespace, selector))
            if served[kube.SCALED_OBJECTS]:
                reads.append(Read(kube.SCALED_OBJECTS, namespace))
            if with_pods:
                reads.append(Read(kube.PODS, namespace, selector))
        for namespace, engine in sorted({(env.engine_namespace, env.engine) for env in desired.environments}, key=lambda t: (t[0], t[1].value)):
            reads.append(Read(ENGINE_KINDS[engine], namespace, selector))
        return reads

    def list_all(self, reads: Iterable[Read]) -> None:
        todo = [r for r in reads]
        with ThreadPoolExecutor(max_workers=LIST_WORKERS) as pool:
            listings = list(pool.map(lambda r: self.cluster.list(r.resource, r.namespace, r.selector), todo))
        for read, listing in zip(todo, listings):
            cache = _Cache(read, _parser(read.resource, self.desired))
            cache.fill(listing)
            self.caches[read] = cache

    def check_namespaces(self) -> None:
        """Namespaces where git wants endpoints and the cluster shows none: do they exist at all?"""
        found = {w.namespace for w in self._all(kube.DEPLOYMENTS)} | {w.namespace for w in self._all(kube.ROLLOUTS)}
        wanted = sorted({ep.namespace for ep in self.desired.endpoints} - found)
        missing = [ns for ns in wanted if self.cluster.namespace_exists(ns) is False]
        self.missing_namespaces = frozenset(missing)
        every = {ep.namespace for ep in self.desired.endpoints}
        if missing and set(missing) == every:
            envs = sorted({env.name for env in self.desired.environments if env.namespace in missing})
            raise NamespaceNotFound(
                f"namespace {', '.join(missing)} (environment {', '.join(envs)}) does not exist on the cluster at "
                f"{self.cluster.server} ({self.cluster.identity})",
                hint="is this the cluster those environments deploy to? Choose it with --context, or ask only for "
                "this cluster's environments with --env",
            )

    # --- comparing ---------------------------------------------------------------------------------

    def _all(self, resource: kube.Resource) -> list[Any]:
        return [o for read, cache in self.caches.items() if read.resource == resource for o in cache.objects.values()]

    def snapshot(self) -> Snapshot:
        return Snapshot(
            workloads=self._all(kube.DEPLOYMENTS) + self._all(kube.ROLLOUTS),
            replicasets=self._all(kube.REPLICASETS),
            autoscalers=self._all(kube.HPAS),
            scaled_objects=self._all(kube.SCALED_OBJECTS),
            pods=self._all(kube.PODS),
            engines=self._all(kube.APPLICATIONS) + self._all(kube.KUSTOMIZATIONS),
            missing_namespaces=self.missing_namespaces,
            rollouts_served=self.rollouts_served,
        )

    def head(self, snapshot: Snapshot) -> Head:
        if self.head_commit is None:
            return Head(None)
        revisions = {e.revision for e in snapshot.engines if e.revision} - set(self._relations) - {self.head_commit}
        if revisions:
            assert self.checkout is not None
            for commit, relation in gitx.ancestry(self.checkout.repo, revisions, self.head_commit).items():
                self._relations[commit] = Relation(relation)
        return Head(self.head_commit, dict(self._relations))

    def report(self, timed_out: bool = False) -> StatusReport:
        snapshot = self.snapshot()
        endpoints = compare(self.desired, snapshot, self.head(snapshot))
        if self.request.models and not endpoints:
            raise UsageError(
                f"no endpoint of model {', '.join(self.request.models)} in git or in the cluster",
                hint="list the models with `gitops-ml models`",
            )
        return StatusReport(endpoints, self.head_commit, self.cluster.server, self.cluster.identity, self.cluster.calls, timed_out)


def read_status(request: StatusRequest) -> StatusReport:
    """What runs where, once: list calls per namespace and kind, compared with git."""
    session = _Session(request)
    try:
        session.list_all(session.plan_reads(with_pods=False))
        session.check_namespaces()
        report = session.report()
        troubled = sorted({e.namespace for e in report.endpoints if not e.verdict.settled and e.workload is not None})
        if troubled:
            # pods say why a rollout is stuck (image pull, crash loop, scheduling); read them only where needed
            session.list_all(Read(kube.PODS, ns, session.desired.selector) for ns in troubled)
            report = session.report()
        return report
    finally:
        session.close()


_END = object()
_EXPIRED = object()


def watch_status(request: StatusRequest, on_report: Callable[[StatusReport], None]) -> StatusReport:
    """Read once, then follow every read with the watch API until all endpoints settle or the timeout
    passes; `on_report` gets the first report and every one that differs from the last."""
    started = time.monotonic()
    deadline = started + request.timeout
    session = _Session(request)
    streams: dict[Read, kube.WatchStream] = {}
    threads: list[threading.Thread] = []
    events: "queue.Queue[tuple[Read, Any]]" = queue.Queue()
    try:
        session.list_all(session.plan_reads(with_pods=True))
        session.check_namespaces()
        report = session.report()
        on_report(report)

        def pump(read: Read, stream: kube.WatchStream) -> None:
            try:
                for event in stream:
                    events.put((read, event))
                events.put((read, _END))
            except kube.WatchExpired:
                events.put((read, _EXPIRED))
            except Exception as exc:  # noqa: BLE001 - raised again by the main thread, which reports it
                events.put((read, exc))

        opened: dict[Read, float] = {}
        quiet: dict[Read, float] = {}  # reads whose last stream ended early without an event: wait before the next
        due: dict[Read, float] = {}

        def start(read: Read) -> None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            cache = session.caches[read]
            stream = session.cluster.watch(read.resource, read.namespace, read.selector, cache.resource_version, remaining)
            streams[read] = stream
            opened[read] = time.monotonic()
            thread = threading.Thread(target=pump, args=(read, stream), name=f"watch {read.resource} {read.namespace}", daemon=True)
            threads.append(thread)
            thread.start()

        def ended(read: Read, had_events: bool) -> None:
            """A stream ended before the deadline: go on from the last version seen. A proxy that cuts
            streams at once must not turn this into a busy loop, so an empty early end waits, doubling."""
            if had_events or time.monotonic() - opened.get(read, 0.0) >= MIN_STREAM_SECONDS:
                quiet.pop(read, None)
                start(read)
                return
            wait = min(quiet.get(read, 0.5) * 2, MAX_RESTART_WAIT)
            quiet[read] = wait
            due[read] = time.monotonic() + wait

        seen: set[Read] = set()
        if not report.settled:
            for read in list(session.caches):
                start(read)
        while not report.settled:
            now = time.monotonic()
            for read in [r for r, t in due.items() if t <= now]:
                del due[read]
                start(read)
            remaining = deadline - now
            if remaining <= 0:
                break
            wait = min([remaining, *(t - now for t in due.values())])
            try:
                batch = [events.get(timeout=max(wait, 0.0))]
            except queue.Empty:
                continue
            while True:  # take everything already queued before comparing again
                try:
                    batch.append(events.get_nowait())
                except queue.Empty:
                    break
            changed = False
            for read, item in batch:
                if isinstance(item, BaseException):
                    raise item
                if item is _END:
                    ended(read, read in seen)
                    seen.discard(read)
                elif item is _EXPIRED:
                    session.list_all([read])
                    changed = True
                    start(read)
                else:
                    seen.add(read)
                    changed = session.caches[read].apply(item) or changed
            if changed:
                new = session.report()
                if new.endpoints != report.endpoints:
                    on_report(new)
                report = new
        return replace(report, timed_out=not report.settled, calls=session.cluster.calls)
    finally:
        for stream in streams.values():
            stream.close()
        for thread in threads:
            thread.join(timeout=5)
        session.close()

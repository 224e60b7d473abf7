"""The only user of the official `kubernetes` client: configuration found as kubectl finds it, list and
watch calls that hand back the API's own JSON, and its errors mapped to gitops_ml.errors.

Read-only by construction: no call here can create, change or delete anything. Nothing here knows
what a model or an endpoint is (gitops_ml.status does); `Cluster.calls` counts every HTTP request.
"""

from __future__ import annotations

import functools
import math
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson
import urllib3

from gitops_ml import __version__
from gitops_ml.errors import (
    ClusterAccessError,
    ClusterError,
    GitopsMlError,
    KubeconfigError,
)

INSTALL_HINT = "install the Kubernetes client: pip install 'gitops-ml[kubernetes]'"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
PAGE_SIZE = 500  # objects per list page: big lists come in pieces, as kubectl fetches them
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Resource:
    """A kind of object the status reads: its API group, version, plural and kind."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
REPLICASETS = Resource("apps", "v1", "replicasets", "ReplicaSet")
PODS = Resource("", "v1", "pods", "Pod")
NAMESPACES = Resource("", "v1", "namespaces", "Namespace")
HPAS = Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler")
ROLLOUTS = Resource("argoproj.io", "v1alpha1", "rollouts", "Rollout")
APPLICATIONS = Resource("argoproj.io", "v1alpha1", "applications", "Application")
SCALED_OBJECTS = Resource("keda.sh", "v1alpha1", "scaledobjects", "ScaledObject")
KUSTOMIZATIONS = Resource("kustomize.toolkit.fluxcd.io", "v1", "kustomizations", "Kustomization")


@dataclass(frozen=True)
class ClusterSettings:
    """Which cluster to ask and how long to wait. None means what kubectl would use."""

    context: str | None = None
    kubeconfig: Path | None = None  # else $KUBECONFIG, else ~/.kube/config, else the pod's service account
    request_timeout: float = 30.0
    service_account_dir: Path = SERVICE_ACCOUNT_DIR  # in-cluster credentials (tests point it elsewhere)


@dataclass
class Listing:
    """The objects of one list call (all pages) and the resourceVersion to watch from."""

    items: list[dict[str, Any]]
    resource_version: str


@dataclass(frozen=True)
class WatchEvent:
    """One event of a watch stream: ADDED, MODIFIED, DELETED or BOOKMARK, and the object as JSON."""

    type: str
    object: dict[str, Any]


EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})


class WatchExpired(Exception):
    """The resourceVersion a watch started from is too old (410 Gone): list again, then watch."""


def _kubernetes() -> Any:
    try:
        import kubernetes  # noqa: PLC0415 - optional extra, imported when a cluster is asked
    except ImportError as exc:
        raise KubeconfigError("`gitops-ml status` needs the Kubernetes client, which is not installed", hint=INSTALL_HINT) from exc
    return kubernetes


def _kubeconfig_paths(settings: ClusterSettings) -> tuple[str, list[Path]]:
    """(how the user named them, existing kubeconfig files) in kubectl's order of precedence."""
    if settings.kubeconfig is not None:
        if not settings.kubeconfig.is_file():
            raise KubeconfigError(f"kubeconfig {settings.kubeconfig} does not exist")
        return str(settings.kubeconfig), [settings.kubeconfig]
    env = os.environ.get("KUBECONFIG", "")
    if env:
        # kubectl merges every file of the list and skips the ones that do not exist
        paths = [Path(p).expanduser() for p in env.split(os.pathsep) if p]
        return f"$KUBECONFIG ({env})", [p for p in paths if p.is_file()]
    default = Path("~/.kube/config").expanduser()
    return str(default), [default] if default.is_file() else []


def _in_cluster(settings: ClusterSettings) -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (settings.service_account_dir / "token").is_file()


class Cluster:
    """A connection to one API server. Use `connect()`; close it when done."""

    def __init__(self, api: Any, kubernetes: Any, server: str, identity: str, context: str | None, timeout: float) -> None:
        self._api = api
        self._k = kubernetes
        self.server = server
        self.identity = identity  # who is asking, for messages: "context 'kind-prod' (user 'admin')"
        self.context = context
        self.timeout = timeout
        self._calls = 0
        self._lock = threading.Lock()
        # every group but the core one is read through the generic API: same paths, and the typed
        # API classes of kubernetes>=37 cost seconds to import (pydantic models of every kind they name)
        self._custom = kubernetes.client.CustomObjectsApi(api)
        self._core_api: Any = None

    @property
    def calls(self) -> int:
        """HTTP requests made so far (list pages, discovery, watches)."""
        return self._calls

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- calls -----------------------------------------------------------------------------

    def served(self, group: str, version: str) -> frozenset[str]:
        """Plural names the API server serves in group/version (discovery); empty when it serves none."""
        raw = self._request(
            lambda: self._custom.get_api_resources(group, version, _preload_content=False, _request_timeout=self._timeouts()),
            verb="get", what=f"API group {group}/{version}", accept={404},
        )
        if isinstance(raw, _Status):
            return frozenset()
        doc = _json(raw)
        return frozenset(str(r.get("name")) for r in doc.get("resources") or [] if "/" not in str(r.get("name")))

    def list(self, resource: Resource, namespace: str, selector: str = "") -> Listing:
        """Every object of a kind in a namespace matching a label selector, page by page."""
        items: list[dict[str, Any]] = []
        token = ""
        what = f"{resource} in namespace {namespace!r}"
        while True:
            kwargs: dict[str, Any] = {"limit": PAGE_SIZE, "_preload_content": False, "_request_timeout": self._timeouts()}
            if selector:
                kwargs["label_selector"] = selector
            if token:
                kwargs["_continue"] = token
            raw = self._request(functools.partial(self._lister(resource), namespace, **kwargs), verb="list", what=what)
            doc = _json(raw)
            items.extend(doc.get("items") or [])
            meta = doc.get("metadata") or {}
            token = str(meta.get("continue") or "")
            if not token:
                return Listing(items, str(meta.get("resourceVersion") or ""))

    def namespace_exists(self, name: str) -> bool | None:
        """Whether a namespace exists; None when the credentials may not ask (403)."""
        raw = self._request(
            lambda: self._core.read_namespace(name, _preload_content=False, _request_timeout=self._timeouts()),
            verb="get", what=f"namespace {name!r}", accept={403, 404},
        )
        if isinstance(raw, _Status):
            return None if raw.code == 403 else False
        return True

    def watch(self, resource: Resource, namespace: str, selector: str, resource_version: str, seconds: float) -> "WatchStream":
        """Open a watch (`watch=true`) from resource_version; the server ends it after `seconds`."""
        server_seconds = max(1, math.ceil(seconds))
        kwargs: dict[str, Any] = {
            "watch": True,
            "allow_watch_bookmarks": True,
            "resource_version": resource_version,
            "timeout_seconds": server_seconds,
            "_preload_content": False,
            # the read timeout outlives the server's own end of the stream, so a dead connection still ends
            "_request_timeout": (CONNECT_TIMEOUT, server_seconds + 15),
        }
        if selector:
            kwargs["label_selector"] = selector
        what = f"{resource} in namespace {namespace!r}"
        response = self._request(lambda: self._lister(resource)(namespace, **kwargs), verb="watch", what=what)
        return WatchStream(response, self, what)

    # --- plumbing ----------------------------------------------------------------------------

    def _timeouts(self) -> tuple[float, float]:
        return (min(CONNECT_TIMEOUT, self.timeout), self.timeout)

    @property
    def _core(self) -> Any:
        if self._core_api is None:
            self._core_api = self._k.client.CoreV1Api(self._api)
        return self._core_api

    def _lister(self, resource: Resource) -> Callable[..., Any]:
        if resource == PODS:
            return self._core.list_namespaced_pod  # type: ignore[no-any-return]
        if not resource.group:
            raise ValueError(f"no lister for core resource {resource}")

        def custom(namespace: str, **kwargs: Any) -> Any:
            return self._custom.list_namespaced_custom_object(resource.group, resource.version, namespace, resource.plural, **kwargs)

        return custom

    def _request(self, call: Callable[[], Any], *, verb: str, what: str, accept: set[int] | None = None) -> Any:
        """call()'s answer; a status in `accept` comes back as a _Status, any other failure is raised mapped."""
        with self._lock:
            self._calls += 1
        return _mapped(self, call, verb, what, accept or set())


@dataclass(frozen=True)
class _Status:
    """An error status the caller gives its own meaning (a 404 namespace, a 403 it can do without)."""

    code: int


def _mapped(cluster: Cluster, call: Callable[[], Any], verb: str, what: str, accept: set[int]) -> Any:
    k = cluster._k
    try:
        return call()
    except k.client.exceptions.ApiException as exc:
        status = int(getattr(exc, "status", 0) or 0)
        if status in accept:
            return _Status(status)
        raise _api_error(cluster, exc, verb, what) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise _transport_error(cluster, exc) from exc
    except k.config.ConfigException as exc:
        # an exec plugin or token refresh that fails at request time
        raise KubeconfigError(f"the credentials of {cluster.identity} cannot be used: {exc}") from exc


def _status_message(body: Any) -> str:
    """The `message` of a Status object the API server answered with, else the body's text."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body:
        return ""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return str(body).strip()[:300]
    if isinstance(doc, dict):
        return str(doc.get("message") or "").strip()
    return ""


def _api_error(cluster: Cluster, exc: Any, verb: str, what: str) -> GitopsMlError:
    status = int(getattr(exc, "status", 0) or 0)
    message = _status_message(getattr(exc, "body", None))
    server = cluster.server
    if status == 401:
        return ClusterAccessError(
            f"the API server at {server} rejected the credentials of {cluster.identity} (401 Unauthorized)",
            hint="log in again or renew the token (with the same kubeconfig `kubectl get --raw /version` fails the same way)",
        )
    if status == 403:
        return ClusterAccessError(
            f"{cluster.identity} may not {verb} {what} (403 Forbidden)" + (f": {message}" if message else ""),
            hint="`gitops-ml status` needs get, list and watch on what it reads; `gitops-ml status --print-rbac` "
            "prints a read-only ClusterRole and its RoleBindings for a cluster admin to apply",
        )
    if status == 0:
        # the client reports TLS failures this way
        reason = str(getattr(exc, "reason", "") or exc).replace("\n", ": ")
        return ClusterError(
            f"cannot talk to the API server at {server}: {reason}",
            hint="check the cluster's certificate-authority in the kubeconfig (or the proxy in between)",
        )
    if status == 404:
        return ClusterError(f"the API server at {server} does not serve {what} (404)" + (f": {message}" if message else ""))
    reason = str(getattr(exc, "reason", "") or "")
    return ClusterError(f"the API server at {server} answered {status} {reason} to {verb} {what}" + (f": {message}" if message else ""))


_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>:?\s*")


def _transport_error(cluster: Cluster, exc: BaseException) -> ClusterError:
    reason = getattr(exc, "reason", None) or exc
    text = _OBJECT_REPR.sub("", str(reason)).strip() or type(reason).__name__
    return ClusterError(
        f"cannot reach the Kubernetes API server at {cluster.server} ({cluster.identity}): {text}",
        hint="check that the cluster is up and reachable from here (VPN, proxy) and that --context names it "
        "(`kubectl config get-contexts` lists them)",
    )


def _json(response: Any) -> dict[str, Any]:
    data = response.data
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ClusterError(f"the API server answered something that is not JSON: {bytes(data[:200])!r}") from exc
    if not isinstance(doc, dict):
        raise ClusterError("the API server answered JSON that is not an object")
    return doc


class WatchStream:
    """The events of one watch until the server ends it or `close()` is called from another thread."""

    def __init__(self, response: Any, cluster: Cluster, what: str) -> None:
        self._response = response
        self._cluster = cluster
        self._what = what
        self._closed = threading.Event()

    def close(self) -> None:
        self._closed.set()
        # shutdown() wakes a thread blocked reading the socket (urllib3 2.3+); close() does not
        shutdown = getattr(self._response, "shutdown", None)
        try:
            if shutdown is not None:
                shutdown()
            self._response.close()
        except Exception:  # noqa: BLE001 - closing a stream that is already gone
            pass

    def __iter__(self) -> Iterator[WatchEvent]:
        buffer = b""
        try:
            for chunk in self._response.stream(amt=None, decode_content=False):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        yield self._event(line)
            if buffer.strip() and not self._closed.is_set():
                yield self._event(buffer)
        except (urllib3.exceptions.HTTPError, OSError, ValueError, AttributeError) as exc:
            # closing from another thread makes http.client fail in various ways: that is the end asked for
            if self._closed.is_set():
                return
            if isinstance(exc, AttributeError):
                raise
            raise _transport_error(self._cluster, exc) from exc
        finally:
            try:
                self._response.release_conn()
            except Exception:  # noqa: BLE001
                pass

    def _event(self, line: bytes) -> WatchEvent:
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ClusterError(f"the watch of {self._what} sent a line that is not JSON: {line[:200]!r}") from exc
        kind = str(doc.get("type") or "") if isinstance(doc, dict) else ""
        obj = doc.get("object") if isinstance(doc, dict) else None
        if kind not in EVENT_TYPES or not isinstance(obj, dict):
            raise ClusterError(f"the watch of {self._what} sent something that is not a watch event: {line[:200]!r}")
        if kind == "ERROR":
            code = int(obj.get("code") or 0)
            if code == 410:
                raise WatchExpired(str(obj.get("message") or ""))
            raise ClusterError(f"the watch of {self._what} failed: {code} {obj.get('reason') or ''}: {obj.get('message') or ''}")
        return WatchEvent(kind, obj)


# --- configuration --------------------------------------------------------------------------------


@dataclass
class _Loaded:
    configuration: Any
    server: str
    identity: str
    context: str | None
    contexts: list[str] = field(default_factory=list)


def _load(settings: ClusterSettings, k: Any) -> _Loaded:
    named, paths = _kubeconfig_paths(settings)
    configuration = k.client.Configuration()
    if not paths:
        if settings.context:
            raise KubeconfigError(f"--context {settings.context} needs a kubeconfig, and there is none: {named} does not exist")
        if _in_cluster(settings):
            sa = settings.service_account_dir
            try:
                k.config.incluster_config.InClusterConfigLoader(
                    token_filename=str(sa / "token"), cert_filename=str(sa / "ca.crt")
                ).load_and_set(configuration)
            except k.config.ConfigException as exc:
                raise KubeconfigError(f"the pod's service account cannot be used: {exc}") from exc
            return _Loaded(configuration, configuration.host, "this pod's service account", None)
        raise KubeconfigError(
            f"no Kubernetes configuration: {named} does not exist and this is not a pod in a cluster",
            hint="point KUBECONFIG (or --kubeconfig) at the kubeconfig of the cluster, as for kubectl",
        )
    joined = os.pathsep.join(str(p) for p in paths)
    try:
        contexts, current = k.config.list_kube_config_contexts(config_file=joined)
    except (k.config.ConfigException, OSError, ValueError, TypeError, AttributeError) as exc:
        raise KubeconfigError(f"cannot read the kubeconfig {named}: {exc}") from exc
    names = [str(c.get("name")) for c in contexts or []]
    chosen = settings.context or (current or {}).get("name")
    if not chosen:
        raise KubeconfigError(
            f"the kubeconfig {named} names no current context",
            hint=f"pass --context (one of: {', '.join(names) or 'none'})",
        )
    if chosen not in names:
        raise KubeconfigError(
            f"context {chosen!r} is not in the kubeconfig {named}",
            hint=f"contexts there: {', '.join(names) or 'none'}",
        )
    entry = next(c for c in contexts if c.get("name") == chosen)
    user = (entry.get("context") or {}).get("user")
    try:
        k.config.load_kube_config(config_file=joined, context=chosen, client_configuration=configuration, persist_config=False)
    except (k.config.ConfigException, OSError, ValueError, TypeError, KeyError) as exc:
        raise KubeconfigError(f"context {chosen!r} of the kubeconfig {named} cannot be used: {exc}") from exc
    identity = f"context {chosen!r}" + (f" (user {user!r})" if user else "")
    return _Loaded(configuration, configuration.host, identity, chosen, names)


def connect(settings: ClusterSettings) -> Cluster:
    """A Cluster configured as kubectl would be (--kubeconfig, $KUBECONFIG, ~/.kube/config, in-cluster)."""
    k = _kubernetes()
    loaded = _load(settings, k)
    configuration = loaded.configuration
    # one quick retry on a dropped connection; waiting longer is the caller's --timeout to decide
    configuration.retries = 1
    api = k.client.ApiClient(configuration=configuration)
    api.user_agent = f"gitops-ml/{__version__}"
    return Cluster(api, k, loaded.server, loaded.identity, loaded.context, settings.request_timeout)

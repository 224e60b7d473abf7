"""A local HTTP server on 127.0.0.1 that answers like the Kubernetes API server, and checks each request.

It serves the objects a test puts in it: lists with label selectors and pages (limit/continue),
discovery of API groups, `GET` of a namespace, and `watch=true` streams (chunked JSON lines, from
a resourceVersion, ended by timeoutSeconds, 410 Gone for a compacted version). Errors are `Status`
objects, as the API server sends them. Every request is recorded and checked (method, path, query
parameters, bearer token, user agent); anything a read-only status client must not send is a
problem, and `assert_clean()` fails the test with the list.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator
from urllib.parse import parse_qsl, urlsplit

TOKEN = "kube-test-token-8f3a"

# kind -> (group, version, plural); what the server knows how to store
KINDS = {
    "Namespace": ("", "v1", "namespaces"),
    "Pod": ("", "v1", "pods"),
    "Deployment": ("apps", "v1", "deployments"),
    "ReplicaSet": ("apps", "v1", "replicasets"),
    "HorizontalPodAutoscaler": ("autoscaling", "v2", "horizontalpodautoscalers"),
    "Rollout": ("argoproj.io", "v1alpha1", "rollouts"),
    "Application": ("argoproj.io", "v1alpha1", "applications"),
    "Kustomization": ("kustomize.toolkit.fluxcd.io", "v1", "kustomizations"),
    "ScaledObject": ("keda.sh", "v1alpha1", "scaledobjects"),
}
BUILTIN_GROUPS = {("", "v1"), ("apps", "v1"), ("autoscaling", "v2")}
LIST_PARAMS = {"labelSelector", "limit", "continue"}
TRUE = {"1", "t", "T", "TRUE", "true", "True"}  # what the API server's strconv.ParseBool reads as true
WATCH_PARAMS = {"watch", "labelSelector", "resourceVersion", "timeoutSeconds", "allowWatchBookmarks"}

Key = tuple[str, str, str, str]  # group, version, plural, namespace


def status_object(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A `Status` as the API server answers errors with."""
    out: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        out["details"] = details
    return out


def forbidden(
    verb: str, plural: str, group: str, namespace: str, user: str = "system:serviceaccount:ci:gitops-ml"
) -> dict[str, Any]:
    resource = f"{plural}.{group}" if group else plural
    return status_object(
        403,
        "Forbidden",
        f'{resource} is forbidden: User "{user}" cannot {verb} resource "{plural}" in API group "{group}" in the namespace "{namespace}"',
        {"group": group, "kind": plural},
    )


def _selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Equality- and existence-based label selectors (what the status client sends)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "==" in term or "=" in term:
            k, v = re.split("==?", term, maxsplit=1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


_VALID_SELECTOR = re.compile(
    r"^(!?[A-Za-z0-9./_-]+((==?|!=)[A-Za-z0-9._-]*)?)(,(!?[A-Za-z0-9./_-]+((==?|!=)[A-Za-z0-9._-]*)?))*$"
)


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None


@dataclass
class Fault:
    """Answer requests that `match` with this status and Status body (at most `times` times)."""

    match: Callable[[Seen], bool]
    code: int
    body: dict[str, Any]
    times: int = 1_000_000


@dataclass
class KubeServer:
    url: str = ""
    token: str = TOKEN
    seen: list[Seen] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unauthorized: int = 0
    faults: list[Fault] = field(default_factory=list)
    groups: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # served CRD group/versions -> plurals
    namespaces: set[str] = field(default_factory=set)
    objects: dict[Key, dict[str, dict[str, Any]]] = field(default_factory=dict)
    events: list[tuple[int, Key, str, dict[str, Any]]] = field(default_factory=list)
    compacted: int = 0  # watches from a resourceVersion older than this get 410 Gone
    on_watch: dict[tuple[str, str], Callable[[], None]] = field(default_factory=dict)  # (plural, namespace) -> action
    page_size_limit: int | None = None  # a smaller page than asked, to exercise continue tokens
    _rv: int = 1000
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _stopping: bool = False
    _pages: dict[str, tuple[list[dict[str, Any]], str]] = field(default_factory=dict)

    # --- what the cluster holds -----------------------------------------------------------------

    def serve_crds(self, *kinds: str) -> None:
        """Make the API server serve these custom kinds (their CRDs are installed)."""
        for kind in kinds:
            group, version, plural = KINDS[kind]
            self.groups.setdefault((group, version), set()).add(plural)

    def put(self, obj: dict[str, Any], event: str | None = None) -> dict[str, Any]:
        """Create or replace an object (a MODIFIED/ADDED event for watchers); returns the stored copy."""
        obj = copy.deepcopy(obj)
        group, version, plural = KINDS[obj["kind"]]
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", "")
        with self._lock:
            self._rv += 1
            bucket = self.objects.setdefault((group, version, plural, namespace), {})
            old = bucket.get(meta["name"])
            meta.setdefault(
                "uid",
                old["metadata"]["uid"]
                if old
                else str(uuid.uuid5(uuid.NAMESPACE_URL, f"{plural}/{namespace}/{meta['name']}")),
            )
            meta.setdefault("creationTimestamp", "2024-01-01T12:00:00Z")
            meta["resourceVersion"] = str(self._rv)
            bucket[meta["name"]] = obj
            if namespace:
                self.namespaces.add(namespace)
            self.events.append(
                (
                    self._rv,
                    (group, version, plural, namespace),
                    event or ("MODIFIED" if old else "ADDED"),
                    copy.deepcopy(obj),
                )
            )
            self._lock.notify_all()
        return obj

    def delete(self, kind: str, namespace: str, name: str) -> None:
        group, version, plural = KINDS[kind]
        with self._lock:
            self._rv += 1
            obj = copy.deepcopy(self.objects[(group, version, plural, namespace)].pop(name))
            obj["metadata"]["resourceVersion"] = str(self._rv)
            self.events.append((self._rv, (group, version, plural, namespace), "DELETED", obj))
            self._lock.notify_all()

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        group, version, plural = KINDS[kind]
        return copy.deepcopy(self.objects[(group, version, plural, namespace)][name])

    def fail(self, match: Callable[[Seen], bool], code: int, body: dict[str, Any], times: int = 1_000_000) -> None:
        self.faults.append(Fault(match, code, body, times))

    def compact(self) -> None:
        """Forget the event history, as etcd compaction does: a watch from an older version gets 410 Gone."""
        with self._lock:
            self.compacted = self._rv

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()

    # --- what the client did ----------------------------------------------------------------------

    def calls(self, *, watch: bool | None = None) -> list[Seen]:
        return [s for s in self.seen if watch is None or (s.query.get("watch") in TRUE) == watch]

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)

    # --- serving ----------------------------------------------------------------------------------

    def list_page(
        self, key: Key, selector: str, limit: int | None, token: str
    ) -> tuple[list[dict[str, Any]], str, str]:
        with self._lock:
            if token:
                # every page of a list is the same snapshot, at the first page's resourceVersion
                items, rv = self._pages.pop(token)
            else:
                # stored objects are replaced by put(), never changed in place: no copy is needed to send them
                items = [
                    o
                    for _, o in sorted(self.objects.get(key, {}).items())
                    if _selector_matches(selector, o["metadata"].get("labels") or {})
                ]
                rv = str(self._rv)
        if self.page_size_limit is not None:
            limit = min(limit or self.page_size_limit, self.page_size_limit)
        if limit is None or len(items) <= limit:
            return items, rv, ""
        nxt = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()
        with self._lock:
            self._pages[nxt] = (items[limit:], rv)
        return items[:limit], rv, nxt

    def watch_events(self, key: Key, selector: str, since: int, seconds: float) -> Iterator[dict[str, Any]]:
        """Events of key after `since`, as they happen, until `seconds` pass or the server stops."""
        deadline = time.monotonic() + seconds
        sent = since
        with self._lock:
            if since < self.compacted:
                yield {
                    "type": "ERROR",
                    "object": status_object(410, "Expired", f"too old resource version: {since} ({self.compacted})"),
                }
                return
        while True:
            with self._lock:
                ready = [e for e in self.events if e[0] > sent and e[1] == key]
                if not ready:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or self._stopping:
                        return
                    self._lock.wait(remaining)
                    continue
            for rv, _, kind, obj in ready:
                sent = rv
                if _selector_matches(selector, obj["metadata"].get("labels") or {}):
                    yield {"type": kind, "object": obj}


def _handler(server: KubeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _problem(self, text: str) -> None:
            server.problems.append(f"{self.command} {self.path}: {text}")

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _not_found(self) -> None:
            self._send(404, status_object(404, "NotFound", "the server could not find the requested resource"))

        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            pairs = parse_qsl(parts.query, keep_blank_values=True)
            query = dict(pairs)
            seen = Seen("GET", parts.path, query, self.headers.get("Authorization"))
            server.seen.append(seen)
            if len(pairs) != len(query):
                self._problem("a query parameter is repeated")
            agent = self.headers.get("User-Agent") or ""
            if not agent.startswith("gitops-ml/"):
                self._problem(f"User-Agent {agent!r} does not name gitops-ml")
            auth = seen.authorization or ""
            scheme, _, credential = auth.partition(" ")
            if scheme.lower() != "bearer" or credential != server.token:
                server.unauthorized += 1
                self._send(401, status_object(401, "Unauthorized", "Unauthorized"))
                return
            for fault in server.faults:
                if fault.times > 0 and fault.match(seen):
                    fault.times -= 1
                    self._send(fault.code, fault.body)
                    return
            self._route(parts.path, query)

        def _other(self) -> None:
            server.seen.append(Seen(self.command, self.path, {}, self.headers.get("Authorization")))
            self._problem("a status client sends GET only")
            self._send(405, status_object(405, "MethodNotAllowed", "read-only test server"))

        do_POST = do_PUT = do_PATCH = do_DELETE = _other  # noqa: N815

        def _route(self, path: str, query: dict[str, str]) -> None:
            m = re.fullmatch(r"/api/v1/namespaces/([a-z0-9-]+)", path)
            if m:
                if query:
                    self._problem(f"unexpected query {query}")
                if m[1] in server.namespaces:
                    self._send(
                        200,
                        {
                            "kind": "Namespace",
                            "apiVersion": "v1",
                            "metadata": {"name": m[1]},
                            "status": {"phase": "Active"},
                        },
                    )
                else:
                    self._send(
                        404,
                        status_object(
                            404, "NotFound", f'namespaces "{m[1]}" not found', {"name": m[1], "kind": "namespaces"}
                        ),
                    )
                return
            m = re.fullmatch(r"/apis/([a-z0-9.-]+)/([a-z0-9]+)", path)
            if m:
                group, version = m[1], m[2]
                if (group, version) not in server.groups:
                    self._not_found()
                    return
                resources = [
                    {
                        "name": plural,
                        "singularName": "",
                        "namespaced": True,
                        "kind": kind,
                        "verbs": ["get", "list", "watch"],
                    }
                    for kind, (g, v, plural) in KINDS.items()
                    if (g, v) == (group, version) and plural in server.groups[(group, version)]
                ]
                self._send(
                    200,
                    {
                        "kind": "APIResourceList",
                        "apiVersion": "v1",
                        "groupVersion": f"{group}/{version}",
                        "resources": resources,
                    },
                )
                return
            m = re.fullmatch(r"/api/v1/namespaces/([a-z0-9-]+)/([a-z]+)", path) or re.fullmatch(
                r"/apis/([a-z0-9.-]+)/([a-z0-9]+)/namespaces/([a-z0-9-]+)/([a-z]+)", path
            )
            if not m:
                self._problem("not a path of the Kubernetes API that status reads")
                self._not_found()
                return
            if path.startswith("/api/v1/"):
                group, version, namespace, plural = "", "v1", m[1], m[2]
            else:
                group, version, namespace, plural = m[1], m[2], m[3], m[4]
            served = (group, version) in BUILTIN_GROUPS or plural in server.groups.get((group, version), set())
            known = any((g, v, p) == (group, version, plural) for g, v, p in KINDS.values())
            if not known or not served:
                if not known:
                    self._problem(f"{plural} is not a kind status reads")
                self._not_found()
                return
            selector = query.get("labelSelector", "")
            if selector and not _VALID_SELECTOR.match(selector):
                self._problem(f"malformed labelSelector {selector!r}")
                self._send(400, status_object(400, "BadRequest", f"unable to parse requirement: {selector}"))
                return
            key = (group, version, plural, namespace)
            if query.get("watch") in TRUE:
                self._watch(key, query)
            else:
                self._list(key, query)

        def _list(self, key: Key, query: dict[str, str]) -> None:
            extra = set(query) - LIST_PARAMS
            if extra:
                self._problem(f"unexpected list parameters {sorted(extra)}")
            if "limit" not in query:
                self._problem("a list without limit: large lists must come in pages")
            group, version, plural, _ = key
            limit = int(query["limit"]) if query.get("limit") else None
            items, rv, nxt = server.list_page(key, query.get("labelSelector", ""), limit, query.get("continue", ""))
            kind = next(k for k, (g, v, p) in KINDS.items() if (g, v, p) == (group, version, plural))
            meta: dict[str, Any] = {"resourceVersion": rv}
            if nxt:
                meta["continue"] = nxt
            api_version = f"{group}/{version}" if group else version
            self._send(200, {"kind": f"{kind}List", "apiVersion": api_version, "metadata": meta, "items": items})

        def _watch(self, key: Key, query: dict[str, str]) -> None:
            extra = set(query) - WATCH_PARAMS
            if extra:
                self._problem(f"unexpected watch parameters {sorted(extra)}")
            if not query.get("resourceVersion"):
                self._problem("a watch without resourceVersion would replay every object as ADDED")
            if "timeoutSeconds" not in query:
                self._problem("a watch without timeoutSeconds")
            since = int(query.get("resourceVersion") or 0)
            seconds = float(query.get("timeoutSeconds") or 30)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.flush()
            action = server.on_watch.pop((key[2], key[3]), None)
            if action is not None:
                action()
            try:
                for event in server.watch_events(key, query.get("labelSelector", ""), since, seconds):
                    data = json.dumps(event).encode() + b"\n"
                    self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler


class Running:
    """A started KubeServer: its thread and HTTP server, stopped by `close()`."""

    def __init__(self, state: KubeServer, tls: ssl.SSLContext | None = None) -> None:
        self.state = state
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        self.httpd.daemon_threads = True
        scheme = "http"
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        state.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.state.stop()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()

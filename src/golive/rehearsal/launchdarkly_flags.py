"""LaunchDarkly's flag representations, as the rehearsal's stand-in keeps and serves them.

The REST API shows a flag with its settings per environment (``environments.<env>``: ``on``,
``rules`` with ``clauses`` and a ``rollout``, ``fallthrough``, ``offVariation``, ``salt``,
``version``; ids as ``_id``); the server SDK's data source sends each environment's flag flat
(``variations`` as values, ids as ``id``). A JSON patch (RFC 6902) changes the REST shape, and
what LaunchDarkly would refuse is refused here too.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

FLAG_KEY = "new-credit-assessment-enabled"
TOTAL_WEIGHT = 100_000


def seeded_flag(
    key: str = FLAG_KEY, environments: Sequence[str] = ("production",)
) -> dict[str, Any]:
    """A boolean flag as LaunchDarkly's REST API shows it, off, with a 0% rollout on rule 0."""
    return {
        "key": key,
        "name": key,
        "kind": "boolean",
        "variations": [
            {"_id": "v-new", "value": True, "name": "new engine"},
            {"_id": "v-legacy", "value": False, "name": "legacy"},
        ],
        "environments": {
            env: {
                "on": False,
                "version": 1,
                "salt": f"{key}-{env}-salt",
                "offVariation": 1,
                "fallthrough": {"variation": 1},
                "targets": [],
                "contextTargets": [],
                "prerequisites": [],
                "rules": [
                    {
                        "_id": "rule-all-clients",
                        "description": "every client: the legacy-to-new rollout",
                        # Matches every context key: the rollout decides.
                        "clauses": [
                            {
                                "_id": "clause-all",
                                "contextKind": "user",
                                "attribute": "key",
                                "op": "matches",
                                "values": [".*"],
                                "negate": False,
                            }
                        ],
                        "rollout": {
                            "bucketBy": "key",
                            "variations": [
                                {"variation": 0, "weight": 0},
                                {"variation": 1, "weight": TOTAL_WEIGHT},
                            ],
                        },
                        "trackEvents": False,
                    }
                ],
            }
            for env in environments
        },
    }


def _ids(value: Any) -> Any:
    """The REST shape's ``_id`` keys as the SDK's ``id``."""
    if isinstance(value, list):
        return [_ids(item) for item in value]
    if isinstance(value, dict):
        return {("id" if k == "_id" else k): _ids(v) for k, v in value.items()}
    return value


def sdk_flag(flag: Mapping[str, Any], env: str) -> dict[str, Any]:
    """The flag as the SDK's data source sends it for one environment."""
    settings = flag["environments"][env]
    return {
        "key": flag["key"],
        "version": settings["version"],
        "on": settings["on"],
        "variations": [v["value"] for v in flag["variations"]],
        "offVariation": settings.get("offVariation"),
        "fallthrough": _ids(settings.get("fallthrough") or {"variation": 0}),
        "rules": _ids(settings.get("rules") or []),
        "targets": settings.get("targets") or [],
        "contextTargets": settings.get("contextTargets") or [],
        "prerequisites": settings.get("prerequisites") or [],
        "salt": settings.get("salt") or flag["key"],
        "trackEvents": False,
        "trackEventsFallthrough": False,
        "clientSide": False,
        "deleted": False,
    }


class PatchError(ValueError):
    pass


def _pointer(path: str) -> list[str]:
    if not isinstance(path, str) or not path.startswith("/"):
        raise PatchError(f"{path!r} is not a JSON pointer")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(document: Any, parts: list[str], path: str) -> Any:
    node = document
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PatchError(f"path {path} does not exist")
    return node


def apply_patch(document: dict[str, Any], operations: Any) -> dict[str, Any]:
    """``document`` with the JSON patch (RFC 6902: add, remove, replace, test) applied."""
    if not isinstance(operations, list) or not operations:
        raise PatchError("a patch is a non-empty list of operations")
    result = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict):
            raise PatchError("an operation is an object")
        _apply(result, operation)
    return result


def _apply(document: dict[str, Any], operation: dict[str, Any]) -> None:
    op, path, value = operation.get("op"), operation.get("path", ""), operation.get("value")
    parts = _pointer(path)
    if not parts or parts == [""]:
        raise PatchError("the whole flag cannot be replaced")
    parent = _walk(document, parts[:-1], path)
    leaf = parts[-1]
    if op == "test":
        if _walk(document, parts, path) != value:
            raise PatchError(f"test failed at {path}")
        return
    if op in ("replace", "remove"):
        _walk(document, parts, path)  # must exist
    elif op != "add":
        raise PatchError(f"unsupported operation {op!r}")
    if isinstance(parent, list):
        index = len(parent) if leaf == "-" else int(leaf)
        if op == "add":
            parent.insert(index, value)
        elif op == "remove":
            del parent[index]
        else:
            parent[index] = value
        return
    if not isinstance(parent, dict):
        raise PatchError(f"path {path} does not exist")
    if op == "remove":
        del parent[leaf]
    else:
        parent[leaf] = value


def check_flag(flag: Mapping[str, Any], key: str) -> None:
    """What LaunchDarkly refuses: a changed key, a bad variation, a rollout not at 100000."""
    if flag.get("key") != key:
        raise PatchError("the flag's key cannot change")
    count = len(flag.get("variations") or [])
    for env, settings in (flag.get("environments") or {}).items():
        if not isinstance(settings.get("on"), bool):
            raise PatchError(f"environments/{env}/on must be true or false")
        serves = [settings.get("fallthrough") or {}, *(settings.get("rules") or [])]
        for index, served in enumerate(serves):
            rollout = served.get("rollout")
            if rollout is None:
                if not (isinstance(served.get("variation"), int) and served["variation"] < count):
                    raise PatchError(f"environments/{env}: serve {index} names no variation")
                continue
            weights = rollout.get("variations") or []
            if any(
                not isinstance(w.get("weight"), int)
                or w["weight"] < 0
                or not 0 <= w.get("variation", -1) < count
                for w in weights
            ):
                raise PatchError(f"environments/{env}: a rollout weight is invalid")
            if sum(w["weight"] for w in weights) != TOTAL_WEIGHT:
                raise PatchError(
                    f"environments/{env}: rollout weights must add up to {TOTAL_WEIGHT}"
                )

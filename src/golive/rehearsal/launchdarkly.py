"""A LaunchDarkly stand-in for rehearsals and tests: the REST API golive writes the traffic
weight through, and the data source the real server SDK reads flags from.

    python -m golive.rehearsal.launchdarkly --port 8095 [--project production]
        [--environment production] --api-token-env NAME --sdk-key-env NAME

It holds flags in LaunchDarkly's own representations, so the real SDK evaluates them with its
own bucketing (``hash(flagKey.salt.contextKey)`` against rollout weights out of 100000):

    GET   /api/v2/flags/{project}              {"items": [flag...]} (``?env=`` keeps those)
    GET   /api/v2/flags/{project}/{key}        the flag (REST shape: ``environments.<env>``
                                               with ``on``, ``rules``, ``fallthrough``,
                                               ``offVariation``, ``salt``, ``version``)
    PATCH /api/v2/flags/{project}/{key}        a JSON patch (``{"patch": [ops]}`` or a bare
                                               list; ``replace``, ``add``, ``remove``, ``test``);
                                               each environment it changes gets ``version + 1``
                                               and its SDK streams a ``patch`` event
          Authorization: <API token>           401 without it or with another one
          404 unknown project or flag; 400 a patch that does not apply or leaves a rollout
          whose weights do not add up to 100000

    GET   /all                                 the SDK's stream (server-sent events): ``put``
                                               with every flag at once, then a ``patch`` per
                                               change, and a comment line as heartbeat
    GET   /sdk/latest-all                      the SDK's polling answer (the same ``put`` data)
          Authorization: <SDK key>             401 for a key of no environment (the SDK gives
                                               up: its data source goes OFF)
    POST  /bulk, /diagnostic                   analytics events: counted, 202, thrown away
    GET   /health                              200 once serving
    GET   /control, POST /control              switches (loopback callers only):

Switches: ``fail_status`` (400, 401, 403, 404, 409, 429, 500, 502, 503 or 0) answers the next
``fail_times`` REST requests of ``fail_method`` (``PATCH``, ``GET`` or ``ANY``) with that code
(``Retry-After: retry_after_s`` on 429 and 503), changing nothing; ``hold_patches: N`` accepts
the next N PATCHes (version up, 200) but never tells the SDKs (a later change tells them the
flag as it then is); ``refuse_streams`` answers new stream and
poll connections 503; ``drop_streams: true`` closes every open stream once (the SDKs reconnect
unless streams are refused); ``{"reset": true}`` restores them all and zeroes the counters.

golive never imports the service: the flag is seeded here in the shape golive's
``launchdarkly`` provider patches (rule 0: every context, a rollout on the variations
``[true, false]``; off variation ``false``; ``on: false``).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import functools
import hmac
import json
import sys
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from golive.rehearsal.standin import Switch, control, secret_from_env, serve, whole_number_in

FLAG_KEY = "new-credit-assessment-enabled"
TOTAL_WEIGHT = 100_000
FAIL_STATUSES = (0, 400, 401, 403, 404, 409, 429, 500, 502, 503)
HEARTBEAT_S = 5.0
MESSAGES = {
    400: ("invalid_request", "Invalid JSON patch"),
    401: ("unauthorized", "Invalid access token"),
    403: ("forbidden", "Access to the requested resource was denied"),
    404: ("not_found", "Unknown resource"),
    409: ("conflict", "The flag was updated by someone else; retry with the current version"),
    429: ("rate_limited", "Rate limited"),
    500: ("internal_server_error", "Internal server error"),
    502: ("bad_gateway", "Bad gateway"),
    503: ("service_unavailable", "Service unavailable"),
}


@dataclass(frozen=True)
class Faults:
    fail_status: int = 0
    fail_times: int = 0
    fail_method: str = "PATCH"
    retry_after_s: int = 1
    hold_patches: int = 0
    refuse_streams: bool = False
    drop_streams: bool = False


SWITCHES = {
    "fail_status": Switch(lambda v: v in FAIL_STATUSES, f"fail_status is one of {FAIL_STATUSES}"),
    "fail_times": Switch(whole_number_in(0, 1000), "fail_times is a whole number 0-1000"),
    "fail_method": Switch(lambda v: v in ("PATCH", "GET", "ANY"), "fail_method: PATCH, GET, ANY"),
    "retry_after_s": Switch(whole_number_in(0, 300), "retry_after_s is a whole number 0-300"),
    "hold_patches": Switch(whole_number_in(0, 1000), "hold_patches is a whole number 0-1000"),
    "refuse_streams": Switch(lambda v: isinstance(v, bool), "refuse_streams is true or false"),
    "drop_streams": Switch(lambda v: isinstance(v, bool), "drop_streams is true or false"),
}


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


class LaunchDarklyStandIn:
    """The flags of one project, their environments' SDK keys, and the open SDK streams."""

    def __init__(
        self,
        api_token: str,
        sdk_keys: Mapping[str, str],
        project: str = "production",
        flags: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        self.api_token = api_token
        self.sdk_keys = dict(sdk_keys)  # environment -> SDK key
        self.project = project
        initial = flags if flags is not None else [seeded_flag(environments=list(sdk_keys))]
        self.flags = {f["key"]: copy.deepcopy(f) for f in initial}
        # What each environment's SDKs were told (differs from the REST flags while held).
        self.published = {
            env: {k: sdk_flag(f, env) for k, f in self.flags.items()} for env in self.sdk_keys
        }
        self.streams: dict[str, set[asyncio.Queue[str | None]]] = {e: set() for e in sdk_keys}
        self.faults = Faults()
        self.counts: Counter[str] = Counter()

    # ------------------------------------------------------------------ REST

    def fault(self, method: str) -> Response | None:
        faults = self.faults
        if not faults.fail_status or faults.fail_times <= 0:
            return None
        if faults.fail_method not in ("ANY", method):
            return None
        self.faults = Faults(**{**faults.__dict__, "fail_times": faults.fail_times - 1})
        self.counts[f"fault_{faults.fail_status}"] += 1
        headers = {}
        if faults.fail_status in (429, 503):
            headers["Retry-After"] = str(faults.retry_after_s)
        return error(faults.fail_status, headers=headers)

    def authorised(self, request: Request) -> bool:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), self.api_token.encode())

    def rest_view(self, flag: Mapping[str, Any], envs: list[str]) -> dict[str, Any]:
        view = copy.deepcopy(dict(flag))
        if envs:
            view["environments"] = {e: s for e, s in view["environments"].items() if e in envs}
        return view

    def patch(self, key: str, body: Any) -> dict[str, Any]:
        operations = body.get("patch") if isinstance(body, dict) else body
        before = self.flags[key]
        after = apply_patch(before, operations)
        check_flag(after, key)
        for env, settings in after["environments"].items():
            old = dict(before["environments"].get(env) or {})
            new = dict(settings)
            old.pop("version", None)
            new.pop("version", None)
            if old != new:
                settings["version"] = int(before["environments"].get(env, {}).get("version", 0)) + 1
        self.flags[key] = after
        self.counts["patches"] += 1
        if self.faults.hold_patches > 0:
            held = self.faults.hold_patches - 1
            self.faults = Faults(**{**self.faults.__dict__, "hold_patches": held})
            self.counts["patches_held"] += 1
        else:
            self.publish(key)
        return after

    def publish(self, key: str) -> None:
        """Tell every open stream of every environment the flag's current state."""
        for env, queues in self.streams.items():
            if env not in self.flags[key]["environments"]:
                continue
            flag = sdk_flag(self.flags[key], env)
            if self.published[env].get(key) == flag:
                continue
            self.published[env][key] = flag
            event = json.dumps({"path": f"/flags/{key}", "data": flag})
            for queue in queues:
                queue.put_nowait(f"event: patch\ndata: {event}\n\n")

    def drop_streams(self) -> int:
        dropped = 0
        for queues in self.streams.values():
            for queue in queues:
                queue.put_nowait(None)
                dropped += 1
        self.counts["streams_dropped"] += dropped
        return dropped

    # ------------------------------------------------------------------ SDK

    def environment_of(self, request: Request) -> str | None:
        given = request.headers.get("authorization", "").encode()
        for env, key in self.sdk_keys.items():
            if hmac.compare_digest(given, key.encode()):
                return env
        return None

    def all_data(self, env: str) -> dict[str, Any]:
        return {"flags": dict(self.published[env]), "segments": {}}


def error(
    status: int, message: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    code, default = MESSAGES.get(status, ("error", "Error"))
    return JSONResponse(
        {"code": code, "message": message or default}, status_code=status, headers=headers
    )


async def _stream(standin: LaunchDarklyStandIn, request: Request) -> Response:
    """``GET /all``: a ``put`` with every flag, then a ``patch`` per change, heartbeats between."""
    env = standin.environment_of(request)
    if env is None:
        standin.counts["sdk_refused"] += 1
        return error(401)
    if standin.faults.refuse_streams:
        standin.counts["streams_refused"] += 1
        return error(503)
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    standin.streams[env].add(queue)
    standin.counts["streams_opened"] += 1
    put = json.dumps({"path": "/", "data": standin.all_data(env)})

    async def events() -> AsyncIterator[str]:
        try:
            yield f"event: put\ndata: {put}\n\n"
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    yield ":\n\n"
                    continue
                if message is None:
                    return
                yield message
        finally:
            standin.streams[env].discard(queue)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def create_app(standin: LaunchDarklyStandIn) -> Starlette:
    async def flags(request: Request) -> Response:
        standin.counts["rest_requests"] += 1
        if not standin.authorised(request):
            return error(401)
        failed = standin.fault(request.method)
        if failed is not None:
            return failed
        project = request.path_params["project"]
        key = request.path_params.get("key")
        if project != standin.project or (key is not None and key not in standin.flags):
            return error(404)
        envs = [e for e in request.query_params.getlist("env") if e]
        if key is None:
            items = [standin.rest_view(f, envs) for f in standin.flags.values()]
            return JSONResponse({"items": items, "totalCount": len(items)})
        if request.method == "PATCH":
            try:
                body = json.loads(await request.body() or b"null")
                standin.patch(key, body)
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                return error(400, str(exc)[:300])
        return JSONResponse(standin.rest_view(standin.flags[key], envs))

    async def latest_all(request: Request) -> Response:
        env = standin.environment_of(request)
        if env is None:
            standin.counts["sdk_refused"] += 1
            return error(401)
        if standin.faults.refuse_streams:
            return error(503)
        standin.counts["polls"] += 1
        return JSONResponse(standin.all_data(env))

    async def events(request: Request) -> Response:
        standin.counts["event_posts"] += 1
        await request.body()
        return Response(status_code=202)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def control_route(request: Request) -> Response:
        answer = await control(request, standin, SWITCHES, Faults, error)
        if standin.faults.drop_streams:
            standin.faults = Faults(**{**standin.faults.__dict__, "drop_streams": False})
            standin.drop_streams()
        return answer

    return Starlette(
        routes=[
            Route("/api/v2/flags/{project}", flags, methods=["GET"]),
            Route("/api/v2/flags/{project}/{key}", flags, methods=["GET", "PATCH"]),
            Route("/all", functools.partial(_stream, standin), methods=["GET"]),
            Route("/sdk/latest-all", latest_all, methods=["GET"]),
            Route("/bulk", events, methods=["POST"]),
            Route("/diagnostic", events, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/control", control_route, methods=["GET", "POST"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m golive.rehearsal.launchdarkly",
        description="A LaunchDarkly stand-in: the REST API and the server SDK's data source.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--project", default="production")
    parser.add_argument("--environment", default="production")
    parser.add_argument("--flag-key", default=FLAG_KEY)
    parser.add_argument("--api-token-env", metavar="NAME", required=True)
    parser.add_argument("--sdk-key-env", metavar="NAME", required=True)
    args = parser.parse_args(argv)
    try:
        token = secret_from_env(args.api_token_env)
        sdk_key = secret_from_env(args.sdk_key_env)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    assert token is not None and sdk_key is not None
    standin = LaunchDarklyStandIn(
        token,
        {args.environment: sdk_key},
        args.project,
        [seeded_flag(args.flag_key, [args.environment])],
    )
    serve(create_app(standin), args.host, args.port, "launchdarkly_standin_started")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A LaunchDarkly stand-in for rehearsals and tests: the REST API golive writes the traffic
weight through, and the data source the real server SDK reads flags from.

    python -m golive.rehearsal.launchdarkly --port 8095 [--project production]
        [--environment production] --api-token-env NAME --sdk-key-env NAME

It holds flags in LaunchDarkly's own representations, so the real SDK evaluates them with its
own bucketing (``hash(flagKey.salt.contextKey)`` against rollout weights out of 100000):

    GET   /api/v2/flags/{project}              {"items": [flag...], "totalCount"} (``?env=``
                                               keeps those; ``limit`` (20), ``offset``)
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

from golive.rehearsal.launchdarkly_flags import (
    FLAG_KEY,
    apply_patch,
    check_flag,
    sdk_flag,
    seeded_flag,
)
from golive.rehearsal.standin import Switch, control, secret_from_env, serve, whole_number_in

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
            offset = int(request.query_params.get("offset") or 0)
            limit = int(request.query_params.get("limit") or 20)
            page = items[offset : offset + limit]
            return JSONResponse({"items": page, "totalCount": len(items)})
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

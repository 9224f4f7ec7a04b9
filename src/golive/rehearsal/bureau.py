"""A credit bureau emulator for rehearsals and tests, with switches for faults.

    python -m golive.rehearsal.bureau --port 8090 --reports bureau.jsonl [--api-key-env NAME]

The reports file is written by the service (``credit-assessment seed --bureau-file PATH``): JSON
lines, or CSV with a header when the name ends in ``.csv``, with ``client_id``,
``has_delinquency``, ``recent_inquiries`` and ``open_accounts``.

HTTP interface:

    GET  /v1/reports/{clientId}   200 {"clientId", "hasDelinquency", "recentInquiries",
                                       "openAccounts", "reportedAt"}
                                  404 no credit file for this client; 401 wrong or missing key
                                  (the ``X-API-Key`` header, when --api-key-env is given)
    GET  /health                  200 once serving
    GET  /control                 the fault switches and request counters
    POST /control                 set switches (loopback callers only), e.g.
                                  {"latency_ms": 300, "failure_rate": 0.5, "mode": "error"}
                                  {"reset": true} puts every switch back and zeroes the counters

Switches: ``latency_ms`` delays every report; with ``mode`` other than ``ok``, a share
``failure_rate`` (default 1) of report requests fail that way:

    timeout   hold the request for ``hang_s`` (default 30 s), then 504
    error     500 with a problem body
    garbage   200 with a body that is not a valid report, a different kind each time
              (not JSON, cut-off JSON, a list, wrong types, missing fields, another client)

golive never imports the service, so this module reads a file rather than the service's data.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import random
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from golive.rehearsal.standin import (
    Switch,
    control,
    number_in,
    parse_boolean,
    read_records,
    run,
    whole_number_in,
)

MODES = ("ok", "timeout", "error", "garbage")
API_KEY_HEADER = "X-API-Key"
MAX_LATENCY_MS = 120_000
MAX_HANG_S = 300.0


class ReportsFileError(ValueError):
    """The reports file cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Facts:
    has_delinquency: bool
    recent_inquiries: int
    open_accounts: int


def _count(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"not a count: {value!r}")
    number = int(str(value))
    if number < 0:
        raise ValueError(f"negative count: {value!r}")
    return number


def load_reports(path: str | Path) -> dict[UUID, Facts]:
    """Every client's facts from the file; a bad line is a ReportsFileError naming it."""
    source = Path(path)
    try:
        records = read_records(source, ReportsFileError)
    except OSError as exc:
        raise ReportsFileError(f"{source}: cannot read ({exc.strerror})") from exc
    reports: dict[UUID, Facts] = {}
    for number, record in records:
        try:
            reports[UUID(str(record["client_id"]))] = Facts(
                has_delinquency=parse_boolean(record["has_delinquency"]),
                recent_inquiries=_count(record["recent_inquiries"]),
                open_accounts=_count(record["open_accounts"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ReportsFileError(f"{source}:{number}: bad record ({exc!r})") from exc
    return reports


@dataclass(slots=True)
class Faults:
    latency_ms: int = 0
    failure_rate: float = 1.0
    mode: str = "ok"
    hang_s: float = 30.0


SWITCHES = {
    "latency_ms": Switch(
        whole_number_in(0, MAX_LATENCY_MS), f"latency_ms must be an integer 0..{MAX_LATENCY_MS}"
    ),
    "failure_rate": Switch(number_in(0, 1), "failure_rate must be a number 0..1"),
    "mode": Switch(lambda mode: mode in MODES, f"mode must be one of {', '.join(MODES)}"),
    "hang_s": Switch(number_in(0, MAX_HANG_S), f"hang_s must be a number 0..{MAX_HANG_S:g}"),
}


def _garbage_bodies(client_id: str) -> list[tuple[str, bytes]]:
    other = "00000000-0000-4000-8000-000000000000"
    good = {"clientId": client_id, "hasDelinquency": False, "recentInquiries": 1}
    return [
        ("text/html", b"<html><body>502 Bad Gateway</body></html>"),
        ("application/json", b'{"clientId": "' + client_id.encode() + b'", "hasDeli'),
        ("application/json", b"[]"),
        (
            "application/json",
            json.dumps({**good, "hasDelinquency": "no", "openAccounts": "2"}).encode(),
        ),
        ("application/json", json.dumps(good).encode()),  # openAccounts missing
        ("application/json", json.dumps({**good, "clientId": other, "openAccounts": 1}).encode()),
    ]


@dataclass(slots=True)
class Emulator:
    reports: dict[UUID, Facts]
    api_key: str | None = field(default=None, repr=False)
    faults: Faults = field(default_factory=Faults)
    counts: Counter[str] = field(default_factory=Counter)
    rng: random.Random = field(default_factory=random.Random)
    garbage_turn: itertools.count[int] = field(default_factory=itertools.count)

    async def report(self, request: Request) -> Response:
        self.counts["requests"] += 1
        if self.api_key is not None:
            given = request.headers.get(API_KEY_HEADER, "")
            if not hmac.compare_digest(given.encode(), self.api_key.encode()):
                return self._answer("unauthorized", _problem(401, "missing or wrong API key"))
        faults = self.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        raw_id = request.path_params["client_id"]
        if faults.mode != "ok" and self.rng.random() < faults.failure_rate:
            return await self._fault(faults, raw_id)
        try:
            client_id = UUID(raw_id)
        except ValueError:
            return self._answer("bad_request", _problem(400, "clientId is not a UUID"))
        facts = self.reports.get(client_id)
        if facts is None:
            return self._answer("not_found", _problem(404, "no credit file for this client"))
        body = {
            "clientId": str(client_id),
            "hasDelinquency": facts.has_delinquency,
            "recentInquiries": facts.recent_inquiries,
            "openAccounts": facts.open_accounts,
            "reportedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        return self._answer("ok", JSONResponse(body))

    async def _fault(self, faults: Faults, raw_id: str) -> Response:
        if faults.mode == "timeout":
            self.counts["timeout"] += 1
            await asyncio.sleep(faults.hang_s)
            return _problem(504, "held past the caller's patience")
        if faults.mode == "error":
            return self._answer("error", _problem(500, "internal error (emulated)"))
        bodies = _garbage_bodies(raw_id)
        media_type, content = bodies[next(self.garbage_turn) % len(bodies)]
        return self._answer("garbage", Response(content, media_type=media_type))

    def _answer(self, kind: str, response: Response) -> Response:
        self.counts[kind] += 1
        return response

    async def control(self, request: Request) -> Response:
        return await control(request, self, SWITCHES, Faults, _problem)


def _problem(status: int, detail: str) -> Response:
    return JSONResponse(
        {"status": status, "detail": detail}, status, media_type="application/problem+json"
    )


async def _health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app(emulator: Emulator) -> Starlette:
    return Starlette(
        routes=[
            Route("/v1/reports/{client_id}", emulator.report, methods=["GET"]),
            Route("/control", emulator.control, methods=["GET", "POST"]),
            Route("/health", _health, methods=["GET"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run(
        argv,
        prog="python -m golive.rehearsal.bureau",
        description="Credit bureau emulator.",
        data=("--reports", "JSON lines or .csv file"),
        secret=("--api-key-env", "require the key in $NAME"),
        load=load_reports,
        app=lambda reports, api_key, rng: create_app(Emulator(reports, api_key, rng=rng)),
        event="bureau_emulator_starting",
    )


if __name__ == "__main__":
    sys.exit(main())

"""The legacy credit assessment system, emulated for rehearsals and tests.

    python -m golive.rehearsal.legacy --port 8070 --clients legacy-clients.csv [--token-env NAME]

An older system with its own API and its own rules (docs/legacy.md has the whole contract and
the mapping to the new API). It decides with a flat-rate instalment, a points table and fixed
cut-offs -- no counter-offers, terms up to 72 months, amounts up to 300,000 ZMW -- so on some
segments it genuinely disagrees with the new engine, which is what shadow comparison is for.

HTTP interface:

    POST /legacy/credit/evaluate  {"client_id": "...", "amount": 50000, "term_months": 24}
                                  200 {"reference", "outcome": "APPROVE|DECLINE|REVIEW",
                                       "score": 300..850, "grade": "A".."E",
                                       "reason_codes": [...], "instalment", "rule_version"}
                                  400 {"error_code": "INVALID_REQUEST", "message"}
                                  401 wrong or missing ``Authorization: Bearer`` (with --token-env)
                                  503 {"error_code": "SERVICE_UNAVAILABLE"} (fault switch)
    GET  /legacy/health           200 {"status": "UP"}
    GET  /control                 the fault switches and request counters
    POST /control                 loopback callers only: {"latency_ms": 200, "failure_rate": 0.05}
                                  {"reset": true} clears switches and counters

The clients file (``credit-assessment seed --legacy-file PATH``) is CSV with a header when its
name ends in ``.csv``, JSON lines otherwise, with ``client_id``, ``monthly_income``,
``monthly_debt_payments``, ``has_delinquency``, ``employment``, ``seniority_years`` (an empty
value is unknown). golive never imports the service, so this module reads a file.
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
from pathlib import Path

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

RULE_VERSION = "LCR-2016.3"
COLUMNS = (
    "client_id",
    "monthly_income",
    "monthly_debt_payments",
    "has_delinquency",
    "employment",
    "seniority_years",
)
FLAT_RATE = 0.25  # per year, on the original amount
MAX_OBLIGATIONS_SHARE = 0.55  # (existing repayments + instalment) / income
MIN_AMOUNT, MAX_AMOUNT = 500.0, 300_000.0
MIN_TERM, MAX_TERM = 3, 72
GRADES = (("A", 740), ("B", 690), ("C", 640), ("D", 590), ("E", 0))
EMPLOYMENT_POINTS = {"fixed": 70, "partime": 20, "freelance": 10, "others": -10}
MAX_LATENCY_MS = 120_000

# Every reason code the legacy system gives (docs/legacy.md maps them to the new codes).
REASONS = (
    "NO_RECORD",
    "TERM_OUT_OF_RANGE",
    "AMOUNT_OUT_OF_RANGE",
    "DELINQUENCY",
    "INCOME_NOT_VERIFIED",
    "INSUFFICIENT_INCOME",
    "HIGH_DEBT_RATIO",
    "LOW_SCORE",
    "MANUAL_REVIEW",
    "SHORT_EMPLOYMENT",
    "EMPLOYMENT_UNVERIFIED",
)


class ClientsFileError(ValueError):
    """The clients file cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Client:
    monthly_income: float | None
    monthly_debt_payments: float
    has_delinquency: bool
    employment: str | None
    seniority_years: int | None


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: str  # APPROVE | DECLINE | REVIEW
    score: int
    grade: str
    reason_codes: tuple[str, ...]
    instalment: float | None


# --------------------------------------------------------------------------- the rules


def flat_instalment(amount: float, term_months: int) -> float:
    """The old flat-rate instalment: interest on the original amount for the whole term."""
    return round(amount * (1 + FLAT_RATE * term_months / 12) / term_months, 2)


def score_of(client: Client, obligations_share: float) -> int:
    points = 560
    points += EMPLOYMENT_POINTS.get(client.employment or "", -20)
    points += min(client.seniority_years or 0, 15) * 6
    for limit, bonus in ((0.15, 90), (0.25, 60), (0.35, 30), (MAX_OBLIGATIONS_SHARE, 0)):
        if obligations_share < limit:
            points += bonus
            break
    else:
        points -= 60
    if client.monthly_debt_payments == 0:
        points += 30
    if client.has_delinquency:
        points -= 200
    return max(300, min(850, points))


def grade_of(score: int) -> str:
    return next(grade for grade, floor in GRADES if score >= floor)


def decide(client: Client | None, amount: float, term_months: int) -> Decision:  # noqa: PLR0911
    """The legacy decision: knock-outs, then affordability, then the score's grade."""
    if client is None:
        return Decision("REVIEW", 300, "E", ("NO_RECORD",), None)
    instalment = flat_instalment(amount, term_months)
    income = client.monthly_income
    share = (client.monthly_debt_payments + instalment) / income if income else 1.0
    score = score_of(client, share)
    grade = grade_of(score)

    def answer(outcome: str, *codes: str) -> Decision:
        return Decision(outcome, score, grade, codes, instalment)

    if not MIN_TERM <= term_months <= MAX_TERM:
        return answer("DECLINE", "TERM_OUT_OF_RANGE")
    if not MIN_AMOUNT <= amount <= MAX_AMOUNT:
        return answer("DECLINE", "AMOUNT_OUT_OF_RANGE")
    if client.has_delinquency:
        return answer("DECLINE", "DELINQUENCY")
    if not income or income <= 0:
        return answer("REVIEW", "INCOME_NOT_VERIFIED")
    if share > MAX_OBLIGATIONS_SHARE:
        debt_heavy = client.monthly_debt_payments / income > 0.25
        return answer(
            "DECLINE", "INSUFFICIENT_INCOME", *(("HIGH_DEBT_RATIO",) if debt_heavy else ())
        )
    if grade == "E":
        return answer("DECLINE", "LOW_SCORE")
    short = (client.seniority_years or 0) < 2
    if grade == "D":
        return answer("REVIEW", "MANUAL_REVIEW", *(("SHORT_EMPLOYMENT",) if short else ()))
    if client.employment != "fixed" and (client.seniority_years or 0) < 1:
        return answer("REVIEW", "EMPLOYMENT_UNVERIFIED")
    return answer("APPROVE")


# --------------------------------------------------------------------------- the clients file


def _optional_number(value: object) -> float | None:
    if value is None or str(value).strip() == "":
        return None
    number = float(str(value))
    if number < 0:
        raise ValueError(f"negative amount: {value!r}")
    return number


def load_clients(path: str | Path) -> dict[str, Client]:
    """Every client by lower-case id; a bad line is a ClientsFileError naming it."""
    source = Path(path)
    try:
        records = read_records(source, ClientsFileError, COLUMNS)
    except OSError as exc:
        raise ClientsFileError(f"{source}: cannot read ({exc.strerror})") from exc
    clients: dict[str, Client] = {}
    for number, record in records:
        try:
            client_id = str(record["client_id"]).strip().lower()
            if not client_id:
                raise ValueError("empty client_id")
            seniority = _optional_number(record.get("seniority_years"))
            clients[client_id] = Client(
                monthly_income=_optional_number(record.get("monthly_income")),
                monthly_debt_payments=_optional_number(record.get("monthly_debt_payments")) or 0.0,
                # A blank cell: the legacy system records no delinquency.
                has_delinquency=parse_boolean(record.get("has_delinquency", False), blank=False),
                employment=(str(record.get("employment") or "").strip().lower() or None),
                seniority_years=int(seniority) if seniority is not None else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ClientsFileError(f"{source}:{number}: bad record ({exc!r})") from exc
    return clients


# --------------------------------------------------------------------------- the service


@dataclass(slots=True)
class Faults:
    latency_ms: int = 0
    failure_rate: float = 0.0


SWITCHES = {
    "latency_ms": Switch(
        whole_number_in(0, MAX_LATENCY_MS), f"latency_ms must be an integer 0..{MAX_LATENCY_MS}"
    ),
    "failure_rate": Switch(number_in(0, 1), "failure_rate must be a number 0..1", convert=float),
}


@dataclass(slots=True)
class Legacy:
    clients: dict[str, Client]
    token: str | None = field(default=None, repr=False)
    faults: Faults = field(default_factory=Faults)
    counts: Counter[str] = field(default_factory=Counter)
    rng: random.Random = field(default_factory=random.Random)
    references: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def evaluate(self, request: Request) -> Response:
        self.counts["requests"] += 1
        if self.token is not None:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                return self._error("unauthorized", 401, "UNAUTHORIZED", "missing or wrong token")
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        if self.faults.failure_rate and self.rng.random() < self.faults.failure_rate:
            return self._error("failed", 503, "SERVICE_UNAVAILABLE", "evaluation unavailable")
        try:
            client_id, amount, term = _parse(await request.body())
        except ValueError as exc:
            return self._error("invalid", 400, "INVALID_REQUEST", str(exc))
        decision = decide(self.clients.get(client_id), amount, term)
        self.counts[decision.outcome.lower()] += 1
        body = {
            "reference": f"LGC{next(self.references):09d}",
            "outcome": decision.outcome,
            "score": decision.score,
            "grade": decision.grade,
            "reason_codes": list(decision.reason_codes),
            "instalment": decision.instalment,
            "rule_version": RULE_VERSION,
        }
        return JSONResponse(body)

    def _error(self, kind: str, status: int, code: str, message: str) -> Response:
        self.counts[kind] += 1
        return JSONResponse({"error_code": code, "message": message}, status)

    async def control(self, request: Request) -> Response:
        return await control(request, self, SWITCHES, Faults, _control_error)


def _control_error(status: int, message: str) -> Response:
    code = "FORBIDDEN" if status == 403 else "INVALID_REQUEST"
    return JSONResponse({"error_code": code, "message": message}, status)


def _parse(raw: bytes) -> tuple[str, float, int]:
    try:
        doc = json.loads(raw)
    except ValueError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(doc, dict):
        raise ValueError("the body must be a JSON object")
    client_id, amount, term = doc.get("client_id"), doc.get("amount"), doc.get("term_months")
    if not isinstance(client_id, str) or not client_id.strip():
        raise ValueError("client_id is required")
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not amount > 0:
        raise ValueError("amount must be a positive number")
    if isinstance(term, bool) or not isinstance(term, int) or term <= 0:
        raise ValueError("term_months must be a positive whole number")
    return client_id.strip().lower(), float(amount), term


async def _health(_: Request) -> Response:
    return JSONResponse({"status": "UP", "rule_version": RULE_VERSION})


def create_app(legacy: Legacy) -> Starlette:
    return Starlette(
        routes=[
            Route("/legacy/credit/evaluate", legacy.evaluate, methods=["POST"]),
            Route("/legacy/health", _health, methods=["GET"]),
            Route("/control", legacy.control, methods=["GET", "POST"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run(
        argv,
        prog="python -m golive.rehearsal.legacy",
        description="Legacy credit assessment emulator.",
        data=("--clients", "JSON lines or .csv file"),
        secret=("--token-env", "require Bearer $NAME"),
        load=load_clients,
        app=lambda clients, token, rng: create_app(Legacy(clients, token, rng=rng)),
        event="legacy_emulator_starting",
    )


if __name__ == "__main__":
    sys.exit(main())

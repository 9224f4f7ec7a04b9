"""The HTTP adapter to the legacy assessment system (the strangler's old half).

The legacy API speaks its own vocabulary; this module maps it to ours: outcome APPROVE / DECLINE /
REVIEW becomes APPROVED / DECLINED / REFER, ``reason_codes`` become reasons. A legacy system that
is slow, down or answers nonsense raises :class:`LegacyUnavailable` — the caller decides whether
to fail over to the new engine.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson

from credit_assessment.domain import Application, Outcome, Reason
from credit_assessment.routing.http1 import Http1Pool, HttpError

OUTCOMES = {
    "APPROVE": Outcome.APPROVED,
    "DECLINE": Outcome.DECLINED,
    "REVIEW": Outcome.REFER,
}


class LegacyUnavailable(RuntimeError):
    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome  # "timeout" | "error"


@dataclass(frozen=True, slots=True)
class LegacyDecision:
    outcome: Outcome
    score: int
    grade: str
    reasons: tuple[Reason, ...]
    reference: str
    latency_s: float


def parse_legacy(document: Any, latency_s: float) -> LegacyDecision:
    """Map the legacy system's answer; anything unexpected is :class:`LegacyUnavailable`."""
    try:
        outcome = OUTCOMES[str(document["outcome"]).upper()]
        score = int(document["score"])
        grade = str(document.get("grade") or "")
        codes = document.get("reason_codes") or []
        if not isinstance(codes, list):
            raise TypeError("reason_codes is not a list")
        reasons = tuple(Reason(f"LEGACY_{code}", f"Legacy reason {code}") for code in codes[:4])
        reference = str(document.get("reference") or "")
    except (KeyError, TypeError, ValueError) as exc:
        raise LegacyUnavailable(
            "error", f"unexpected answer from the legacy system: {exc}"
        ) from exc
    return LegacyDecision(outcome, score, grade, reasons, reference, latency_s)


class LegacyClient:
    def __init__(self, base_url: str, path: str, token: str | None, timeout_s: float) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._path = path
        self._timeout_s = timeout_s
        self._http = Http1Pool(base_url, headers)

    async def evaluate(self, application: Application) -> LegacyDecision:
        body = orjson.dumps(
            {
                "client_id": str(application.client_id),
                "amount": float(application.loan_amount),
                "term_months": application.loan_term_months,
            }
        )
        started = time.perf_counter()
        try:
            answer = await asyncio.wait_for(self._http.post_json(self._path, body), self._timeout_s)
        except TimeoutError as exc:
            raise LegacyUnavailable("timeout", "the legacy system did not answer in time") from exc
        except HttpError as exc:
            raise LegacyUnavailable("error", f"the legacy system is unreachable ({exc})") from exc
        latency = time.perf_counter() - started
        if answer.status != 200:
            raise LegacyUnavailable("error", f"the legacy system answered {answer.status}")
        try:
            document = orjson.loads(answer.body)
        except orjson.JSONDecodeError as exc:
            raise LegacyUnavailable(
                "error", "the legacy system answered with invalid JSON"
            ) from exc
        return parse_legacy(document, latency)

    async def close(self) -> None:
        await self._http.close()


def client_key(client_id: UUID) -> str:
    return str(client_id)

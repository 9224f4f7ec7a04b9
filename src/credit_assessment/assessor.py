"""Assessing one application end to end: look up the client, decide, store, count.

This is the use case behind ``POST /api/v1/assessment``; HTTP lives in ``api``, SQL in ``store``,
the decision itself in ``domain``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from credit_assessment.domain import Application, BureauReport, ClientProfile, Decision, assess
from credit_assessment.store.assessments import (
    AssessmentRecord,
    AssessmentWriter,
    IdempotencyClaim,
    KeyReused,
    Replayed,
    WriteOutcome,
    find_claim,
)
from credit_assessment.store.clients import ClientDirectory

ENGINE_NEW = "new"


class ClientNotFound(LookupError):
    def __init__(self, client_id: UUID) -> None:
        super().__init__(f"client {client_id} is not known")
        self.client_id = client_id


@dataclass(frozen=True, slots=True)
class AssessmentInput:
    client_id: UUID
    loan_amount: Decimal
    loan_term: int

    def fingerprint(self) -> str:
        """Identifies the request for idempotency: same fields, same fingerprint."""
        canonical = f"{self.client_id}|{self.loan_amount.normalize():f}|{self.loan_term}"
        return hashlib.sha256(canonical.encode()).hexdigest()


def _flat(value: Any) -> dict[str, Any]:
    """A flat dataclass as JSON-ready values (Decimal and UUID as strings, exact)."""
    out = {}
    for name in _FIELDS.setdefault(type(value), tuple(f.name for f in fields(value))):
        item = getattr(value, name)
        out[name] = str(item) if isinstance(item, Decimal | UUID) else item
    return out


_FIELDS: dict[type, tuple[str, ...]] = {}


def snapshot(
    application: Application, profile: ClientProfile, bureau: BureauReport | None
) -> dict[str, Any]:
    """Everything the engine saw, so the decision can be replayed later."""
    return {
        "application": _flat(application),
        "profile": _flat(profile),
        "bureauReport": _flat(bureau) if bureau is not None else None,
    }


DecideFn = Callable[[Application, ClientProfile, BureauReport | None], Decision]


class EngineUnavailable(RuntimeError):
    """The scorecard or the policy could not be loaded; the service must not decide."""


def load_engine(model_path: Path | None = None, policy_path: Path | None = None) -> DecideFn:
    """The decision function over the packaged (or given) scorecard and policy, verified now."""
    from credit_assessment.model.artifact import default_model, load_model
    from credit_assessment.model.policy import default_policy, load_policy

    try:
        model = load_model(model_path) if model_path else default_model()
        policy = load_policy(policy_path) if policy_path else default_policy()
    except Exception as exc:
        raise EngineUnavailable(str(exc)) from exc

    def decide(
        application: Application, profile: ClientProfile, bureau: BureauReport | None
    ) -> Decision:
        return assess(application, profile, bureau, policy, model)

    return decide


class Assessor:
    def __init__(
        self,
        directory: ClientDirectory,
        writer: AssessmentWriter,
        decide: DecideFn,
        on_stored: Callable[[AssessmentRecord], None] | None = None,
    ) -> None:
        self._directory = directory
        self._writer = writer
        self._decide = decide
        self._on_stored = on_stored

    async def assess(
        self,
        request: AssessmentInput,
        subject: str,
        idempotency_key: str | None = None,
        request_id: str | None = None,
    ) -> WriteOutcome:
        claim = None
        if idempotency_key is not None:
            claim = IdempotencyClaim(subject, idempotency_key, request.fingerprint())
            earlier = await self._earlier(claim)
            if earlier is not None:
                return earlier
        profile = await self._directory.profile(request.client_id)
        if profile is None:
            raise ClientNotFound(request.client_id)
        application = Application(request.client_id, request.loan_amount, request.loan_term)
        bureau = None
        decision = self._decide(application, profile, bureau)
        record = AssessmentRecord(
            id=uuid.uuid4(),
            client_id=request.client_id,
            loan_amount=request.loan_amount,
            loan_term=request.loan_term,
            decision=decision.outcome.value,
            score=decision.score,
            risk_grade=decision.risk_grade,
            reasons=[{"code": r.code, "description": r.description} for r in decision.reasons],
            engine=ENGINE_NEW,
            model_version=decision.model_version,
            policy_version=decision.policy_version,
            offer_amount=decision.offer_amount,
            monthly_instalment=decision.monthly_instalment,
            created_at=datetime.now(UTC),
            input_snapshot=snapshot(application, profile, bureau),
            request_id=request_id,
        )
        outcome = await self._writer.write(record, claim)
        if self._on_stored is not None and not isinstance(outcome, Replayed | KeyReused):
            self._on_stored(outcome.record)
        return outcome

    async def _earlier(self, claim: IdempotencyClaim) -> WriteOutcome | None:
        async with self._directory.database.connect() as conn:
            found = await find_claim(conn, claim.subject, claim.key)
        if found is None:
            return None
        request_hash, record = found
        return Replayed(record) if request_hash == claim.request_hash else KeyReused()

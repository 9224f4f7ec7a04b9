"""Assessing one application end to end: look up the client, decide, store, count.

This is the use case behind ``POST /api/v1/assessment``; HTTP lives in ``api``, SQL in ``store``,
the decision itself in ``domain``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import structlog

from credit_assessment.domain import Application, BureauReport, ClientProfile, Decision, assess
from credit_assessment.faults import Faults
from credit_assessment.identifiers import new_assessment_id
from credit_assessment.routing import ENGINE_LEGACY, ENGINE_NEW
from credit_assessment.routing.flags import TrafficFlag
from credit_assessment.routing.legacy import LegacyClient, LegacyDecision, LegacyUnavailable
from credit_assessment.routing.shadow import ShadowComparison, compare
from credit_assessment.sources.bureau import BureauSource, NoBureau
from credit_assessment.store.assessments import (
    AssessmentRecord,
    AssessmentWriter,
    IdempotencyClaim,
    KeyReused,
    Replayed,
    Stored,
    WriteOutcome,
    find_claim,
)
from credit_assessment.store.clients import ClientDirectory

log = structlog.get_logger()


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


class AssessmentEvents(Protocol):
    """What the assessor reports as it works (the app turns these into metrics)."""

    def decided(self, engine: str, seconds: float) -> None: ...
    def stored(self, record: AssessmentRecord) -> None: ...
    def shadow(self, comparison: ShadowComparison) -> None: ...
    def legacy(self, outcome: str) -> None: ...
    def failed(self, engine: str) -> None: ...


class QuietEvents:
    def failed(self, engine: str) -> None:
        return None

    def decided(self, engine: str, seconds: float) -> None:
        return None

    def stored(self, record: AssessmentRecord) -> None:
        return None

    def shadow(self, comparison: ShadowComparison) -> None:
        return None

    def legacy(self, outcome: str) -> None:
        return None


@dataclass(frozen=True)
class Routing:
    """The strangler: a flag picks the engine per client; legacy answers are shadowed."""

    flag: TrafficFlag
    legacy: LegacyClient
    failover_to_new: bool = True
    shadow: bool = True
    score_tolerance: int = 5

    def engine_for(self, client_id: UUID) -> str:
        return ENGINE_NEW if self.flag.enabled_for(client_id) else ENGINE_LEGACY


class Assessor:
    def __init__(
        self,
        directory: ClientDirectory,
        writer: AssessmentWriter,
        decide: DecideFn,
        events: AssessmentEvents | None = None,
        routing: Routing | None = None,
        bureau: BureauSource | None = None,
        faults: Faults | None = None,
    ) -> None:
        self._directory = directory
        self._writer = writer
        self._decide = decide
        self._events: AssessmentEvents = events or QuietEvents()
        self.routing = routing
        self.bureau: BureauSource = bureau or NoBureau()
        self.faults = faults or Faults()

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
        bureau = (await self.bureau.report(request.client_id)).report
        record = None
        failover = None
        if self.routing is not None and self.routing.engine_for(request.client_id) == ENGINE_LEGACY:
            try:
                legacy = await self.routing.legacy.evaluate(application)
                self._events.legacy("ok")
            except LegacyUnavailable as exc:
                self._events.legacy(exc.outcome)
                self._events.failed(ENGINE_LEGACY)
                if not self.routing.failover_to_new:
                    raise
                failover = str(exc)
            else:
                record = self._legacy_record(application, profile, bureau, legacy, request_id)
        if record is None:
            started = time.perf_counter()
            try:
                await self.faults.before_decision()
                decision = self.faults.after_decision(
                    application, self._decide(application, profile, bureau)
                )
            except Exception:
                self._events.failed(ENGINE_NEW)
                raise
            self._events.decided(ENGINE_NEW, time.perf_counter() - started)
            record = _record(application, profile, bureau, decision, request_id, failover=failover)
        outcome = await self._writer.write(record, claim)
        if isinstance(outcome, Stored):
            self._events.stored(outcome.record)
        return outcome

    async def evaluate(self, request: AssessmentInput) -> Decision:
        """The new engine's decision for this application now, with no side effects."""
        profile = await self._directory.profile(request.client_id)
        if profile is None:
            raise ClientNotFound(request.client_id)
        application = Application(request.client_id, request.loan_amount, request.loan_term)
        bureau = (await self.bureau.report(request.client_id)).report
        return self._decide(application, profile, bureau)

    def _legacy_record(
        self,
        application: Application,
        profile: ClientProfile,
        bureau: BureauReport | None,
        legacy: LegacyDecision,
        request_id: str | None,
    ) -> AssessmentRecord:
        assert self.routing is not None
        self._events.decided(ENGINE_LEGACY, legacy.latency_s)
        shadow = None
        if self.routing.shadow:
            try:
                started = time.perf_counter()
                decision = self.faults.after_decision(
                    application, self._decide(application, profile, bureau)
                )
                comparison = compare(
                    legacy, decision, time.perf_counter() - started, self.routing.score_tolerance
                )
            except Exception:
                log.exception("shadow_failed", client_hash=None)
            else:
                self._events.shadow(comparison)
                shadow = comparison.document()
        snap = snapshot(application, profile, bureau)
        snap["shadow"] = shadow
        snap["legacyReference"] = legacy.reference
        return AssessmentRecord(
            id=new_assessment_id(),
            client_id=application.client_id,
            loan_amount=application.loan_amount,
            loan_term=application.loan_term_months,
            decision=legacy.outcome.value,
            score=legacy.score,
            risk_grade=legacy.grade[:2],
            reasons=[{"code": r.code, "description": r.description} for r in legacy.reasons],
            engine=ENGINE_LEGACY,
            model_version="legacy",
            policy_version="legacy",
            offer_amount=None,
            monthly_instalment=None,
            created_at=datetime.now(UTC),
            input_snapshot=snap,
            request_id=request_id,
        )

    async def _earlier(self, claim: IdempotencyClaim) -> WriteOutcome | None:
        async with self._directory.database.connect() as conn:
            found = await find_claim(conn, claim.subject, claim.key)
        if found is None:
            return None
        request_hash, record = found
        return Replayed(record) if request_hash == claim.request_hash else KeyReused()


def _record(
    application: Application,
    profile: ClientProfile,
    bureau: BureauReport | None,
    decision: Decision,
    request_id: str | None,
    failover: str | None = None,
) -> AssessmentRecord:
    snap = snapshot(application, profile, bureau)
    if failover is not None:
        snap["legacyFailover"] = failover
    return AssessmentRecord(
        id=new_assessment_id(),
        client_id=application.client_id,
        loan_amount=application.loan_amount,
        loan_term=application.loan_term_months,
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
        input_snapshot=snap,
        request_id=request_id,
    )

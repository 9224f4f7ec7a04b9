"""Wire shapes: the request model (its limits come from the settings) and the response model."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from credit_assessment.assessor import AssessmentInput
from credit_assessment.domain import Decision
from credit_assessment.settings import Settings
from credit_assessment.store.assessments import AssessmentRecord


def request_model(settings: Settings) -> type[BaseModel]:
    """The ``POST /api/v1/assessment`` body, bounded by the product's limits."""
    min_amount = float(settings.product_min_amount)
    max_amount = float(settings.product_max_amount)

    class AssessmentRequest(BaseModel):
        """A loan application to assess. Amount in ZMW, term in months."""

        model_config = ConfigDict(extra="forbid", strict=True, title="AssessmentRequest")

        clientId: UUID = Field(description="The client's id.")
        loanAmount: Annotated[
            float,
            Field(
                ge=min_amount,
                le=max_amount,
                description="Requested amount in ZMW, at most two decimal places.",
                json_schema_extra={"multipleOf": 0.01},
            ),
        ]
        loanTerm: Annotated[
            int,
            Field(
                ge=settings.product_min_term_months,
                le=settings.product_max_term_months,
                description="Term in months.",
            ),
        ]

        @field_validator("loanAmount")
        @classmethod
        def _cents(cls, value: float) -> float:
            exponent = Decimal(repr(value)).as_tuple().exponent
            if isinstance(exponent, int) and exponent < -2:
                raise ValueError("must have at most two decimal places")
            return value

    return AssessmentRequest


class ReasonOut(BaseModel):
    code: str
    description: str


class EvaluationOut(BaseModel):
    """The decision the new engine would make now; nothing is stored."""

    model_config = ConfigDict(title="Evaluation")

    clientId: UUID
    loanAmount: float
    loanTerm: int
    decision: Literal["APPROVED", "DECLINED", "REFER", "COUNTER_OFFER"]
    score: int
    riskGrade: str
    reasons: list[ReasonOut]
    engine: str
    modelVersion: str
    policyVersion: str
    offerAmount: float | None = None
    monthlyInstalment: float | None = None


class AssessmentOut(EvaluationOut):
    """A stored assessment: the decision, which engine made it, its id and time."""

    model_config = ConfigDict(title="Assessment")

    id: UUID
    createdAt: datetime


class AssessmentPage(BaseModel):
    items: list[AssessmentOut]
    nextCursor: str | None = None


def evaluation_json(request: AssessmentInput, decision: Decision) -> dict[str, Any]:
    return {
        "clientId": str(request.client_id),
        "loanAmount": float(request.loan_amount),
        "loanTerm": request.loan_term,
        "decision": decision.outcome.value,
        "score": decision.score,
        "riskGrade": decision.risk_grade,
        "reasons": [{"code": r.code, "description": r.description} for r in decision.reasons],
        "engine": "new",
        "modelVersion": decision.model_version,
        "policyVersion": decision.policy_version,
        "offerAmount": float(decision.offer_amount) if decision.offer_amount is not None else None,
        "monthlyInstalment": (
            float(decision.monthly_instalment) if decision.monthly_instalment is not None else None
        ),
    }


def assessment_json(record: AssessmentRecord) -> dict[str, Any]:
    """The response document of one assessment (shape of :class:`AssessmentOut`)."""
    return {
        "id": str(record.id),
        "clientId": str(record.client_id),
        "loanAmount": float(record.loan_amount),
        "loanTerm": record.loan_term,
        "decision": record.decision,
        "score": record.score,
        "riskGrade": record.risk_grade,
        "reasons": record.reasons,
        "engine": record.engine,
        "modelVersion": record.model_version,
        "policyVersion": record.policy_version,
        "offerAmount": float(record.offer_amount) if record.offer_amount is not None else None,
        "monthlyInstalment": (
            float(record.monthly_instalment) if record.monthly_instalment is not None else None
        ),
        "createdAt": record.created_at.isoformat(),
    }

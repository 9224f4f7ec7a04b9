"""Value types of the decision engine. Money is Decimal in Zambian kwacha (ZMW); terms in months."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID

# The knock-out check a policy must run unless it skips the bureau when it is unavailable.
BUREAU_UNAVAILABLE = "bureau_unavailable"


class Outcome(enum.StrEnum):
    APPROVED = "APPROVED"
    DECLINED = "DECLINED"
    REFER = "REFER"
    COUNTER_OFFER = "COUNTER_OFFER"


@dataclass(frozen=True, slots=True)
class Application:
    client_id: UUID
    loan_amount: Decimal
    loan_term_months: int


@dataclass(frozen=True, slots=True)
class ClientProfile:
    """What the lender holds about a client. Any field may be unknown (None).

    ``monthly_income`` is net monthly pay (after tax); ``monthly_debt_payments`` are the
    repayments already deducted for existing credit; ``outstanding_debt`` is the balance owed.
    """

    client_id: UUID
    monthly_income: Decimal | None = None
    monthly_expenses: Decimal | None = None
    monthly_debt_payments: Decimal = Decimal(0)
    outstanding_debt: Decimal | None = None
    assets: Decimal | None = None
    employment: str | None = None  # fixed | freelance | partime | others
    seniority_years: int | None = None
    home: str | None = None  # rent | owner | parents | priv | other | ignore
    purchase_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class BureauReport:
    """A credit bureau's answer about one client."""

    client_id: UUID
    has_delinquency: bool = False
    recent_inquiries: int = 0
    open_accounts: int = 0


@dataclass(frozen=True, slots=True)
class Reason:
    """An adverse-action reason: a stable code and the plain words the applicant reads."""

    code: str
    description: str


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    score: int
    risk_grade: str
    reasons: tuple[Reason, ...]
    model_version: str
    policy_version: str
    offer_amount: Decimal | None = None
    monthly_instalment: Decimal | None = None
    details: dict[str, object] = field(default_factory=dict)

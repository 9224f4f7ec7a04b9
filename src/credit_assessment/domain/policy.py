"""Credit policy as data: product limits, knock-out rules, affordability limits, decision matrix.

A :class:`Policy` is built from a versioned configuration file by
``credit_assessment.model.policy.load_policy``; nothing here reads files. Knock-out rules name
a check from :data:`KNOCK_OUT_CHECKS` (in :mod:`credit_assessment.domain.knockouts`; the names
are checked where the file is parsed, so this module needs none of the checks) and say
which outcome and reason they give, so a rule is switched, reordered or reworded in the file,
not in code.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from credit_assessment.domain.types import BUREAU_UNAVAILABLE, Outcome, Reason


class Affordability(enum.StrEnum):
    """Whether the requested loan fits the client's repayment capacity."""

    AFFORDABLE = "affordable"
    COUNTER_OFFER = "counter_offer"  # a smaller loan of at least the product minimum fits
    UNAFFORDABLE = "unaffordable"


@dataclass(frozen=True, slots=True)
class ProductTerms:
    min_amount: Decimal
    max_amount: Decimal
    min_term_months: int
    max_term_months: int
    annual_rate: Decimal  # nominal, repaid as a monthly annuity
    offer_unit: Decimal  # counter-offers are rounded down to a multiple of this

    def __post_init__(self) -> None:
        if not Decimal(0) < self.min_amount <= self.max_amount:
            raise ValueError("product amounts need 0 < min_amount <= max_amount")
        if not 0 < self.min_term_months <= self.max_term_months:
            raise ValueError("product terms need 0 < min_term_months <= max_term_months")
        if not Decimal(0) <= self.annual_rate < Decimal(5):
            raise ValueError("annual_rate must be a fraction (0.28 for 28%)")
        if not self.offer_unit > 0:
            raise ValueError("offer_unit must be positive")


@dataclass(frozen=True, slots=True)
class AffordabilityRules:
    """Repayment capacity limits, all on net monthly income.

    * debt-service ratio: (existing repayments + new instalment) / net income <= ``dsr_limit``;
    * payroll take-home: net income - existing repayments - new instalment must stay at or
      above ``take_home_min_share`` of net income (Zambian payroll lenders keep 40%);
    * residual income: net income - living expenses - repayments - new instalment must stay at
      or above ``min_residual_income`` (ZMW).
    """

    dsr_limit: Decimal
    take_home_min_share: Decimal
    min_residual_income: Decimal

    def __post_init__(self) -> None:
        if not Decimal(0) < self.dsr_limit <= Decimal(1):
            raise ValueError("dsr_limit must be in (0, 1]")
        if not Decimal(0) <= self.take_home_min_share < Decimal(1):
            raise ValueError("take_home_min_share must be in [0, 1)")
        if self.min_residual_income < 0:
            raise ValueError("min_residual_income must not be negative")


@dataclass(frozen=True, slots=True)
class KnockOut:
    check: str
    outcome: Outcome
    reason: Reason

    def __post_init__(self) -> None:
        if self.outcome not in (Outcome.DECLINED, Outcome.REFER):
            raise ValueError(f"knock-out {self.check!r} must DECLINE or REFER")


@dataclass(frozen=True, slots=True)
class Policy:
    version: str
    product: ProductTerms
    affordability: AffordabilityRules
    knock_outs: tuple[KnockOut, ...]
    decision_matrix: Mapping[str, Mapping[Affordability, Outcome]]
    affordability_reasons: Mapping[str, Reason]  # keyed by rule: dsr, take_home, residual
    fallback_reason: Reason  # used only if an adverse decision would otherwise have none
    max_recent_inquiries: int = 6
    skip_bureau_when_unavailable: bool = False
    max_reasons: int = 4

    def __post_init__(self) -> None:
        checks = {k.check for k in self.knock_outs}
        if BUREAU_UNAVAILABLE not in checks and not self.skip_bureau_when_unavailable:
            raise ValueError(
                "the 'bureau_unavailable' knock-out may be left out only when "
                "skip_bureau_when_unavailable is true"
            )
        for grade, row in self.decision_matrix.items():
            missing = [a.value for a in Affordability if a not in row]
            if missing:
                raise ValueError(f"decision matrix row {grade!r} lacks {missing}")
            if row[Affordability.UNAFFORDABLE] in (Outcome.APPROVED, Outcome.COUNTER_OFFER):
                raise ValueError(f"decision matrix row {grade!r} lends what is unaffordable")
            if row[Affordability.AFFORDABLE] is Outcome.COUNTER_OFFER:
                raise ValueError(f"decision matrix row {grade!r} counter-offers an affordable loan")
            if row[Affordability.COUNTER_OFFER] is Outcome.APPROVED:
                raise ValueError(f"decision matrix row {grade!r} approves more than is affordable")
        missing_rules = {"dsr", "take_home", "residual"} - set(self.affordability_reasons)
        if missing_rules:
            raise ValueError(f"affordability reasons missing for {sorted(missing_rules)}")
        if not 1 <= self.max_reasons <= 4:
            raise ValueError("max_reasons must be between 1 and 4")
        if self.max_recent_inquiries < 0:
            raise ValueError("max_recent_inquiries must not be negative")

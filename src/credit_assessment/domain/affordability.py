"""Affordability: can the client repay the instalment, and if not, how much could they borrow?

Loans repay as a monthly annuity at the product's nominal annual rate. Each rule of
:class:`~credit_assessment.domain.policy.AffordabilityRules` caps the new instalment; the
smallest cap is the client's repayment capacity, and inverting the annuity turns that capacity
into the largest affordable amount. More income never lowers it, and the amount requested
never changes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from credit_assessment.domain.policy import Affordability, AffordabilityRules, ProductTerms
from credit_assessment.domain.types import ClientProfile

CENT = Decimal("0.01")
_ZERO = Decimal(0)
_ONE = Decimal(1)
_TWELVE = Decimal(12)


def instalment(amount: Decimal, annual_rate: Decimal, term_months: int) -> Decimal:
    """Monthly annuity payment (unrounded) repaying ``amount`` over ``term_months``."""
    return amount / annuity_factor(annual_rate, term_months)


def annuity_factor(annual_rate: Decimal, term_months: int) -> Decimal:
    """Present value of 1 ZMW a month for ``term_months``: amount = instalment x factor."""
    if term_months <= 0:
        raise ValueError("term_months must be positive")
    rate = annual_rate / _TWELVE
    if rate == 0:
        return Decimal(term_months)
    return (_ONE - (_ONE + rate) ** -term_months) / rate


def repayment_capacity(profile: ClientProfile, rules: AffordabilityRules) -> dict[str, Decimal]:
    """The largest new instalment each rule allows (negative when already over the limit).

    Income must be known and positive (the knock-out rules refer anything else); unknown
    expenses count as zero here because the ``profile_incomplete`` knock-out refers them.
    """
    income = profile.monthly_income or _ZERO
    existing = profile.monthly_debt_payments
    expenses = profile.monthly_expenses or _ZERO
    return {
        "dsr": rules.dsr_limit * income - existing,
        "take_home": (_ONE - rules.take_home_min_share) * income - existing,
        "residual": income - expenses - existing - rules.min_residual_income,
    }


def max_affordable_amount(
    profile: ClientProfile, term_months: int, rules: AffordabilityRules, annual_rate: Decimal
) -> Decimal:
    """The largest loan (unrounded, ZMW) whose instalment every rule allows; 0 if none."""
    capacity = min(repayment_capacity(profile, rules).values())
    if capacity <= 0:
        return _ZERO
    return capacity * annuity_factor(annual_rate, term_months)


@dataclass(frozen=True, slots=True)
class AffordabilityResult:
    status: Affordability
    monthly_instalment: Decimal  # for the amount requested, to the ngwee
    debt_service_ratio: Decimal  # (existing repayments + new instalment) / net income
    max_amount: Decimal  # largest affordable amount, unrounded
    failed_rules: tuple[str, ...]  # rules the requested loan breaks: dsr, take_home, residual
    offer_amount: Decimal | None = None
    offer_instalment: Decimal | None = None


def assess_affordability(
    profile: ClientProfile,
    amount: Decimal,
    term_months: int,
    rules: AffordabilityRules,
    product: ProductTerms,
) -> AffordabilityResult:
    """Affordability of ``amount`` over ``term_months``; needs a positive known income."""
    income = profile.monthly_income or _ZERO
    if income <= 0:
        raise ValueError("affordability needs a positive monthly income")
    capacity = repayment_capacity(profile, rules)
    payment = instalment(amount, product.annual_rate, term_months)
    failed = tuple(rule for rule, cap in capacity.items() if payment > cap)
    max_amount = max_affordable_amount(profile, term_months, rules, product.annual_rate)
    dsr = ((profile.monthly_debt_payments + payment) / income).quantize(Decimal("0.0001"))
    rounded = payment.quantize(CENT, ROUND_HALF_UP)
    if not failed:
        return AffordabilityResult(Affordability.AFFORDABLE, rounded, dsr, max_amount, failed)
    offer = _round_down(min(max_amount, product.max_amount), product.offer_unit)
    if offer >= amount:  # only at the rounding boundary: offer strictly less than asked
        offer = _round_down(amount - product.offer_unit, product.offer_unit)
    if offer < product.min_amount:
        return AffordabilityResult(Affordability.UNAFFORDABLE, rounded, dsr, max_amount, failed)
    offer_payment = instalment(offer, product.annual_rate, term_months)
    return AffordabilityResult(
        Affordability.COUNTER_OFFER,
        rounded,
        dsr,
        max_amount,
        failed,
        offer_amount=offer,
        offer_instalment=offer_payment.quantize(CENT, ROUND_HALF_UP),
    )


def _round_down(amount: Decimal, unit: Decimal) -> Decimal:
    return (amount / unit).to_integral_value(ROUND_FLOOR) * unit

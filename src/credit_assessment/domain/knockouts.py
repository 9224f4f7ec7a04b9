"""Named knock-out checks. The policy file picks which run and what outcome and reason each gives.

Each check answers "does this rule stop the application?" and never raises, whatever it is
given: NaN, negative or missing values are what the checks exist to catch.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from credit_assessment.domain.types import (
    BUREAU_UNAVAILABLE,
    Application,
    BureauReport,
    ClientProfile,
)

if TYPE_CHECKING:
    from credit_assessment.domain.policy import Policy

Check = Callable[[Application, ClientProfile, "BureauReport | None", "Policy"], bool]

MAX_MONEY = Decimal("1e15")  # far beyond any real figure; keeps the arithmetic in range


def valid_money(value: object) -> bool:
    """A known, finite, non-negative amount (Decimal or int) below :data:`MAX_MONEY` ZMW."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        return False
    if isinstance(value, Decimal) and not value.is_finite():
        return False
    return 0 <= value < MAX_MONEY


def income_verified(profile: ClientProfile) -> bool:
    income = profile.monthly_income
    return valid_money(income) and income is not None and income > 0


def _client_mismatch(
    application: Application, profile: ClientProfile, bureau: BureauReport | None, _: Policy
) -> bool:
    ids = {application.client_id, profile.client_id}
    if bureau is not None:
        ids.add(bureau.client_id)
    return len(ids) != 1


def _amount_outside_limits(
    application: Application, _p: ClientProfile, _b: BureauReport | None, policy: Policy
) -> bool:
    amount = application.loan_amount
    if not valid_money(amount):
        return True
    return not policy.product.min_amount <= amount <= policy.product.max_amount


def _term_outside_limits(
    application: Application, _p: ClientProfile, _b: BureauReport | None, policy: Policy
) -> bool:
    term = application.loan_term_months
    if not isinstance(term, int) or isinstance(term, bool):
        return True
    return not policy.product.min_term_months <= term <= policy.product.max_term_months


def _income_unverified(
    _a: Application, profile: ClientProfile, _b: BureauReport | None, _: Policy
) -> bool:
    return not income_verified(profile)


def _profile_incomplete(
    _a: Application, profile: ClientProfile, _b: BureauReport | None, _: Policy
) -> bool:
    if not valid_money(profile.monthly_expenses) or not valid_money(profile.monthly_debt_payments):
        return True
    optional = (profile.outstanding_debt, profile.assets, profile.purchase_price)
    if any(value is not None and not valid_money(value) for value in optional):
        return True
    seniority = profile.seniority_years
    return seniority is not None and (not isinstance(seniority, int) or seniority < 0)


def _bureau_unavailable(
    _a: Application, _p: ClientProfile, bureau: BureauReport | None, policy: Policy
) -> bool:
    return bureau is None and not policy.skip_bureau_when_unavailable


def _serious_delinquency(
    _a: Application, _p: ClientProfile, bureau: BureauReport | None, _: Policy
) -> bool:
    return bureau is not None and bureau.has_delinquency


def _recent_inquiries(
    _a: Application, _p: ClientProfile, bureau: BureauReport | None, policy: Policy
) -> bool:
    return bureau is not None and bureau.recent_inquiries > policy.max_recent_inquiries


KNOCK_OUT_CHECKS: dict[str, Check] = {
    "client_mismatch": _client_mismatch,
    "amount_outside_limits": _amount_outside_limits,
    "term_outside_limits": _term_outside_limits,
    "income_unverified": _income_unverified,
    "profile_incomplete": _profile_incomplete,
    BUREAU_UNAVAILABLE: _bureau_unavailable,
    "serious_delinquency": _serious_delinquency,
    "recent_inquiries": _recent_inquiries,
}

"""Placeholder policy until the scorecard lands: an honest affordability rule, nothing more."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from credit_assessment.domain.types import (
    Application,
    BureauReport,
    ClientProfile,
    Decision,
    Outcome,
    Reason,
)

MODEL_VERSION = "placeholder-0"
POLICY_VERSION = "placeholder-0"
_ANNUAL_RATE = Decimal("0.28")
_DSR_LIMIT = Decimal("0.60")

_INCOME = Reason("INCOME_INSUFFICIENT", "Income insufficient for amount of credit requested")
_OBLIGATIONS = Reason("EXCESSIVE_OBLIGATIONS", "Excessive obligations in relation to income")
_NO_INCOME = Reason("INCOME_UNVERIFIED", "Unable to verify income")
_DELINQUENT = Reason(
    "DELINQUENT_OBLIGATIONS", "Delinquent past or present credit obligations with others"
)


def _instalment(amount: Decimal, term_months: int) -> Decimal:
    rate = _ANNUAL_RATE / 12
    factor = (1 + rate) ** term_months
    return (amount * rate * factor / (factor - 1)).quantize(Decimal("0.01"), ROUND_HALF_UP)


def assess(
    application: Application,
    profile: ClientProfile,
    bureau_report: BureauReport | None,
    policy: object = None,
    model: object = None,
) -> Decision:
    instalment = _instalment(application.loan_amount, application.loan_term_months)
    income = profile.monthly_income
    if income is None or income <= 0:
        return Decision(Outcome.REFER, 0, "E", (_NO_INCOME,), MODEL_VERSION, POLICY_VERSION)
    if bureau_report is not None and bureau_report.has_delinquency:
        return Decision(Outcome.DECLINED, 0, "E", (_DELINQUENT,), MODEL_VERSION, POLICY_VERSION)
    ratio = (profile.monthly_debt_payments + instalment) / income
    score = max(300, min(850, int(850 - ratio * 600)))
    grade = "A" if score >= 700 else "B" if score >= 640 else "C" if score >= 580 else "D"
    if ratio <= _DSR_LIMIT:
        return Decision(Outcome.APPROVED, score, grade, (), MODEL_VERSION, POLICY_VERSION,
                        monthly_instalment=instalment)
    reasons = (_OBLIGATIONS if profile.monthly_debt_payments > 0 else _INCOME,)
    return Decision(Outcome.DECLINED, score, "E", reasons, MODEL_VERSION, POLICY_VERSION,
                    monthly_instalment=instalment)

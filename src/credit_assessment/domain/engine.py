"""The decision: knock-out rules, then affordability and risk grade through the decision matrix.

Order of work, all of it pure:

1. every knock-out rule of the policy is checked (invalid or missing data REFERs, serious
   delinquency or a loan outside the product DECLINEs);
2. the scorecard scores the application and the score falls in a risk grade (A-E);
3. affordability compares the instalment with the client's repayment capacity and, when the
   full amount does not fit, finds the largest amount that does;
4. with no knock-out, the decision matrix (grade x affordability) gives the outcome;
5. reasons, at most ``policy.max_reasons``: knock-outs first, then broken affordability rules,
   then scorecard characteristics ranked by shortfall against an applicant at the cutoff
   (only when the score is below it). An adverse outcome always carries at least one reason.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR

from credit_assessment.domain.affordability import CENT, AffordabilityResult, assess_affordability
from credit_assessment.domain.knockouts import KNOCK_OUT_CHECKS, income_verified, valid_money
from credit_assessment.domain.policy import KnockOut, Policy, ProductTerms
from credit_assessment.domain.scorecard import Scorecard, scoring_values
from credit_assessment.domain.types import (
    Application,
    BureauReport,
    ClientProfile,
    Decision,
    Outcome,
    Reason,
)

_UNASSESSABLE = Reason("INCOMPLETE_APPLICATION", "Incomplete application")
_GRADE_NOT_IN_POLICY = Reason(
    "GRADE_NOT_IN_POLICY", "Risk grade not covered by the credit policy; manual review"
)


def assess(
    application: Application,
    profile: ClientProfile,
    bureau_report: BureauReport | None,
    policy: Policy,
    model: Scorecard,
) -> Decision:
    """Decide one application. Pure and deterministic: the same inputs give the same decision."""
    fired = tuple(
        sorted(  # stable: declining rules first, then the policy file's order
            (
                rule
                for rule in policy.knock_outs
                if KNOCK_OUT_CHECKS[rule.check](application, profile, bureau_report, policy)
            ),
            key=lambda rule: rule.outcome is not Outcome.DECLINED,
        )
    )
    points = model.points(scoring_values(application, profile, bureau_report, model.money_unit_zmw))
    score = model.base_points + sum(points)
    grade = model.grade(score)
    afford = _affordability(application, profile, policy)

    outcome, extra = _outcome(fired, grade, afford, policy)
    reasons: list[Reason] = [rule.reason for rule in fired] + extra
    if outcome is not Outcome.APPROVED and (not fired or outcome is Outcome.DECLINED):
        if afford is not None:
            reasons += _affordability_reasons(afford, profile, policy)
        if score < model.reference_score:
            reasons += model.adverse_reasons(points)
    reasons = _principal(reasons, outcome, policy)

    offer = afford.offer_amount if afford and outcome is Outcome.COUNTER_OFFER else None
    if afford is None:
        instalment = None
    elif offer is not None:
        instalment = afford.offer_instalment
    else:
        instalment = afford.monthly_instalment
    return Decision(
        outcome=outcome,
        score=score,
        risk_grade=grade,
        reasons=tuple(reasons),
        model_version=model.version,
        policy_version=policy.version,
        offer_amount=offer,
        monthly_instalment=instalment,
        details=_details(fired, afford, model, points, policy.product),
    )


def _affordability(
    application: Application, profile: ClientProfile, policy: Policy
) -> AffordabilityResult | None:
    """Affordability when the inputs allow it; None when they cannot be trusted."""
    amount, term = application.loan_amount, application.loan_term_months
    expenses_ok = profile.monthly_expenses is None or valid_money(profile.monthly_expenses)
    if not (
        income_verified(profile)
        and expenses_ok
        and valid_money(profile.monthly_debt_payments)
        and valid_money(amount)
        and policy.product.min_amount <= amount <= policy.product.max_amount
        and isinstance(term, int)
        and policy.product.min_term_months <= term <= policy.product.max_term_months
    ):
        return None
    return assess_affordability(profile, amount, term, policy.affordability, policy.product)


def _outcome(
    fired: tuple[KnockOut, ...],
    grade: str,
    afford: AffordabilityResult | None,
    policy: Policy,
) -> tuple[Outcome, list[Reason]]:
    if fired:
        declined = any(rule.outcome is Outcome.DECLINED for rule in fired)
        return (Outcome.DECLINED if declined else Outcome.REFER), []
    if afford is None:
        return Outcome.REFER, [_UNASSESSABLE]
    row = policy.decision_matrix.get(grade)
    if row is None:
        return Outcome.REFER, [_GRADE_NOT_IN_POLICY]
    return row[afford.status], []


def _affordability_reasons(
    afford: AffordabilityResult, profile: ClientProfile, policy: Policy
) -> list[Reason]:
    reasons = []
    for rule in afford.failed_rules:
        # With no existing repayments the debt-service ratio is about income, not obligations.
        no_debt = rule == "dsr" and not profile.monthly_debt_payments > 0
        reasons.append(policy.affordability_reasons["residual" if no_debt else rule])
    return reasons


def _principal(reasons: list[Reason], outcome: Outcome, policy: Policy) -> list[Reason]:
    """Distinct codes in order, at most ``max_reasons``; none for an approval."""
    if outcome is Outcome.APPROVED:
        return []
    seen: set[str] = set()
    unique = []
    for reason in reasons:
        if reason.code not in seen:
            seen.add(reason.code)
            unique.append(reason)
    return unique[: policy.max_reasons] or [policy.fallback_reason]


def _details(
    fired: tuple[KnockOut, ...],
    afford: AffordabilityResult | None,
    model: Scorecard,
    points: tuple[int, ...],
    product: ProductTerms,
) -> dict[str, object]:
    details: dict[str, object] = {
        "knock_outs": [rule.check for rule in fired],
        "points": {c.name: p for c, p in zip(model.characteristics, points, strict=True)},
    }
    if afford is not None:
        details["affordability"] = afford.status.value
        details["requested_instalment"] = str(afford.monthly_instalment)
        details["debt_service_ratio"] = str(afford.debt_service_ratio)
        most = min(afford.max_amount, product.max_amount)
        details["max_affordable_amount"] = str(most.quantize(CENT, ROUND_FLOOR))
        details["failed_affordability_rules"] = list(afford.failed_rules)
    return details

"""Golden cases: applications checked by hand against the toy scorecard and the pinned policy.

Arithmetic used below (28% a year, 12 months): monthly rate 0.02333..., annuity factor
10.3624, so 50,000 ZMW costs 4,825.30 a month and 7,500 ZMW a month repays 77,718 ZMW.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from domain_factories import application, clean_bureau, good_profile, make_policy, toy_scorecard

from credit_assessment.domain import Outcome, assess

SCORECARD = toy_scorecard()
POLICY = make_policy()
NOT_GIVEN = object()


@dataclass(frozen=True)
class Case:
    name: str
    outcome: Outcome
    reasons: tuple[str, ...]
    score: int
    grade: str
    amount: int = 50_000
    term: int = 12
    profile: dict[str, Any] = field(default_factory=dict)
    bureau: dict[str, Any] | None = field(default_factory=dict)
    offer: str | None = None


CASES = [
    Case("steady earner, modest loan", Outcome.APPROVED, (), 280, "A"),
    Case(
        # 50 + 60 + 60 + 60 + 0: still grade B, but the knock-out declines.
        "past delinquency on the bureau report",
        Outcome.DECLINED,
        ("DELINQUENT_OBLIGATIONS",),
        230,
        "B",
        bureau={"has_delinquency": True},
    ),
    Case(
        # Delinquency is unknown without a report: 20 points for missing.
        "bureau unavailable",
        Outcome.REFER,
        ("BUREAU_UNAVAILABLE",),
        250,
        "B",
        bureau=None,
    ),
    Case("term beyond 60 months", Outcome.DECLINED, ("TERM_OUTSIDE_LIMITS",), 280, "A", term=72),
    Case(
        "amount above the product maximum",
        Outcome.DECLINED,
        ("AMOUNT_OUTSIDE_LIMITS",),
        280,
        "A",
        amount=600_000,
    ),
    Case(
        # Income missing, so debt-to-income is too: 50 + 60 + 30 + 30 + 50.
        "no income on file",
        Outcome.REFER,
        ("INCOME_UNVERIFIED",),
        220,
        "C",
        profile={"monthly_income": None},
    ),
    Case(
        # 100,000 costs 9,650/month; DSR allows 7,500, take-home 9,000 -> 7,500 x 10.3624.
        "too much for the income: smaller loan offered",
        Outcome.COUNTER_OFFER,
        ("INCOME_INSUFFICIENT", "TAKE_HOME_BELOW_MINIMUM"),
        280,
        "A",
        amount=100_000,
        offer="77500",
    ),
    Case(
        # 3,000 income: 40 points -> 260 (A); expenses eat it all, nothing is affordable.
        "no repayment capacity at all",
        Outcome.DECLINED,
        ("INCOME_INSUFFICIENT", "TAKE_HOME_BELOW_MINIMUM"),
        260,
        "A",
        profile={"monthly_income": Decimal(3_000), "monthly_expenses": Decimal(3_000)},
    ),
    Case(
        # 10 + 20 + 10 (debt 4x income) + 60 + 50 = 150 -> E. Existing repayments 1,800 still
        # leave room (DSR cap 5,700 > 4,825). Shortfalls vs reference: obligations 40,
        # employment 25, seniority 20, income -5.
        "weak profile, affordable: declined on score",
        Outcome.DECLINED,
        ("EXCESSIVE_OBLIGATIONS", "TEMPORARY_EMPLOYMENT", "LENGTH_OF_EMPLOYMENT"),
        150,
        "E",
        profile={
            "employment": "partime",
            "seniority_years": 1,
            "outstanding_debt": Decimal(60_000),
            "monthly_debt_payments": Decimal(1_800),
        },
    ),
    Case(
        # 10 + 20 + 40 (debt 2.67x income) + 60 + 50 = 180 -> D: referred to an underwriter.
        "borderline profile: referred",
        Outcome.REFER,
        ("TEMPORARY_EMPLOYMENT", "LENGTH_OF_EMPLOYMENT", "EXCESSIVE_OBLIGATIONS"),
        180,
        "D",
        profile={
            "employment": "partime",
            "seniority_years": 1,
            "outstanding_debt": Decimal(40_000),
            "monthly_debt_payments": Decimal(1_200),
        },
    ),
    Case(
        "many recent inquiries",
        Outcome.REFER,
        ("RECENT_INQUIRIES",),
        280,
        "A",
        bureau={"recent_inquiries": 9},
    ),
    Case(
        # Both rules fire; the declining one is named first.
        "delinquent and shopping for credit",
        Outcome.DECLINED,
        ("DELINQUENT_OBLIGATIONS", "RECENT_INQUIRIES"),
        230,
        "B",
        bureau={"has_delinquency": True, "recent_inquiries": 9},
    ),
    Case(
        "profile belongs to someone else",
        Outcome.REFER,
        ("CLIENT_MISMATCH",),
        280,
        "A",
        profile={"client_id": UUID("00000000-0000-4000-8000-000000000002")},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case(case: Case) -> None:
    bureau = None if case.bureau is None else clean_bureau(**case.bureau)
    decision = assess(
        application(case.amount, case.term),
        good_profile(**case.profile),
        bureau,
        POLICY,
        SCORECARD,
    )

    assert decision.outcome is case.outcome
    assert tuple(r.code for r in decision.reasons) == case.reasons
    assert (decision.score, decision.risk_grade) == (case.score, case.grade)
    assert decision.offer_amount == (Decimal(case.offer) if case.offer else None)
    assert decision.model_version == "toy-1"
    assert decision.policy_version == "test-policy"


def test_approved_instalment_is_the_annuity_to_the_ngwee() -> None:
    decision = assess(application(), good_profile(), clean_bureau(), POLICY, SCORECARD)

    assert decision.monthly_instalment == Decimal("4825.30")
    assert decision.details["debt_service_ratio"] == "0.3217"


def test_counter_offer_quotes_the_instalment_of_the_offer() -> None:
    decision = assess(application(100_000), good_profile(), clean_bureau(), POLICY, SCORECARD)

    assert decision.offer_amount == Decimal(77_500)
    assert decision.monthly_instalment is not None
    assert abs(decision.monthly_instalment - Decimal("7479.0")) < 1  # 77,500 / 10.3624
    assert decision.monthly_instalment <= Decimal(7_500)  # within the DSR cap


def test_policy_may_explicitly_allow_deciding_without_a_bureau_report() -> None:
    lenient = make_policy(bureau={"skip_when_unavailable": True})

    decision = assess(application(), good_profile(), None, lenient, SCORECARD)

    assert decision.outcome is Outcome.APPROVED
    assert decision.score == 250  # delinquency unknown: the missing points


def test_take_home_rule_binds_when_the_dsr_limit_is_looser() -> None:
    payroll = make_policy(affordability={"dsr_limit": "0.70"})
    # 15,000 income, 4,000 existing repayments: take-home cap 9,000 - 4,000 = 5,000 < 5,500.
    profile = good_profile(monthly_debt_payments=Decimal(4_000), monthly_expenses=Decimal(1_000))

    decision = assess(application(57_000), profile, clean_bureau(), payroll, SCORECARD)

    assert decision.outcome is Outcome.COUNTER_OFFER
    assert [r.code for r in decision.reasons] == ["TAKE_HOME_BELOW_MINIMUM"]


def test_dsr_with_existing_repayments_is_about_obligations() -> None:
    profile = good_profile(monthly_debt_payments=Decimal(5_000))

    decision = assess(application(), profile, clean_bureau(), POLICY, SCORECARD)

    assert decision.outcome is Outcome.COUNTER_OFFER
    assert decision.reasons[0].code == "EXCESSIVE_OBLIGATIONS"
    assert decision.reasons[0].description == "Excessive obligations in relation to income"

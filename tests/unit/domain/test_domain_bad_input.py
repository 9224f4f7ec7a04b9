"""Bad or missing data never crashes the engine and never approves: it REFERs and says why."""

from __future__ import annotations

from decimal import Decimal

import pytest
from domain_factories import CLIENT, application, clean_bureau, good_profile, make_policy

from credit_assessment.domain import Application, ClientProfile, Outcome, assess
from credit_assessment.model import default_model

MODEL = default_model()
POLICY = make_policy()


@pytest.mark.parametrize(
    "income",
    [None, Decimal("NaN"), Decimal("sNaN"), Decimal("-2500"), Decimal(0), Decimal("Infinity")],
    ids=["missing", "NaN", "signalling-NaN", "negative", "zero", "infinite"],
)
def test_unusable_income_is_referred_as_unverified(income: Decimal | None) -> None:
    decision = assess(
        application(), good_profile(monthly_income=income), clean_bureau(), POLICY, MODEL
    )

    assert decision.outcome is Outcome.REFER
    assert decision.reasons[0].code == "INCOME_UNVERIFIED"
    assert decision.reasons[0].description == "Unable to verify income"


@pytest.mark.parametrize(
    "field",
    ["monthly_expenses", "monthly_debt_payments", "outstanding_debt", "assets", "purchase_price"],
)
@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("-1")], ids=["NaN", "negative"])
def test_nonsense_money_fields_are_referred(field: str, value: Decimal) -> None:
    decision = assess(application(), good_profile(**{field: value}), clean_bureau(), POLICY, MODEL)

    assert decision.outcome is Outcome.REFER
    assert [r.code for r in decision.reasons] == ["INCOMPLETE_APPLICATION"]


def test_a_profile_with_nothing_known_is_referred() -> None:
    decision = assess(application(), ClientProfile(client_id=CLIENT), clean_bureau(), POLICY, MODEL)

    assert decision.outcome is Outcome.REFER
    assert [r.code for r in decision.reasons] == ["INCOME_UNVERIFIED", "INCOMPLETE_APPLICATION"]
    assert decision.model_version == MODEL.version


def test_missing_bureau_report_refers_with_bureau_unavailable() -> None:
    decision = assess(application(), good_profile(), None, POLICY, MODEL)

    assert decision.outcome is Outcome.REFER
    assert decision.reasons[0].description == "Credit bureau unavailable"


def test_policy_without_the_bureau_rule_must_say_it_skips_on_purpose() -> None:
    document_rules = [k for k in make_policy().knock_outs if k.check != "bureau_unavailable"]
    assert len(document_rules) == len(POLICY.knock_outs) - 1
    with pytest.raises(ValueError, match="skip_bureau_when_unavailable"):
        type(POLICY)(
            version="x",
            product=POLICY.product,
            affordability=POLICY.affordability,
            knock_outs=tuple(document_rules),
            decision_matrix=POLICY.decision_matrix,
            affordability_reasons=POLICY.affordability_reasons,
            fallback_reason=POLICY.fallback_reason,
        )


@pytest.mark.parametrize(
    ("amount", "term", "code"),
    [
        (Decimal("NaN"), 12, "AMOUNT_OUTSIDE_LIMITS"),
        (Decimal(-50_000), 12, "AMOUNT_OUTSIDE_LIMITS"),
        (Decimal(0), 12, "AMOUNT_OUTSIDE_LIMITS"),
        (Decimal("1e40"), 12, "AMOUNT_OUTSIDE_LIMITS"),
        (Decimal(50_000), 0, "TERM_OUTSIDE_LIMITS"),
        (Decimal(50_000), -6, "TERM_OUTSIDE_LIMITS"),
        (Decimal(50_000), 10**9, "TERM_OUTSIDE_LIMITS"),
    ],
)
def test_impossible_loans_are_declined_without_crashing(
    amount: Decimal, term: int, code: str
) -> None:
    decision = assess(application(amount, term), good_profile(), clean_bureau(), POLICY, MODEL)

    assert decision.outcome is Outcome.DECLINED
    assert decision.reasons[0].code == code
    assert decision.monthly_instalment is None


def test_unknown_categories_score_as_missing_not_as_an_error() -> None:
    odd = good_profile(employment="astronaut", home="boat")
    known_missing = good_profile(employment=None, home=None)

    first = assess(application(), odd, clean_bureau(), POLICY, MODEL)
    second = assess(application(), known_missing, clean_bureau(), POLICY, MODEL)

    assert first.score == second.score


def test_whole_kwacha_given_as_int_are_accepted() -> None:
    as_int = Application(CLIENT, 50_000, 12)  # type: ignore[arg-type]

    decision = assess(as_int, good_profile(), clean_bureau(), POLICY, MODEL)

    assert decision.outcome is Outcome.APPROVED

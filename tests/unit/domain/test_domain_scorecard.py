"""The plain-Python scorecard: bin edges, missing values, derived ratios, reason ranking."""

from __future__ import annotations

from decimal import Decimal

import pytest
from domain_factories import application, clean_bureau, good_profile, toy_scorecard

from credit_assessment.domain import NumericCharacteristic, Reason, Scorecard
from credit_assessment.domain.affordability import annuity_factor, instalment
from credit_assessment.domain.scorecard import characteristic_values, scoring_values

REASON = Reason("X", "x")


def test_a_value_on_a_split_falls_in_the_upper_bin() -> None:
    # Bins [-inf, 2), [2, 5), [5, inf): the training library's convention (digitize, right=False).
    seniority = NumericCharacteristic("seniority_years", (2.0, 5.0), (10, 30, 50), 20, 0.0, REASON)

    assert [seniority.points_for(v) for v in (1.99, 2.0, 4.99, 5.0, 1e9)] == [10, 30, 30, 50, 50]
    assert seniority.points_for(float("-inf")) == 10
    assert seniority.points_for(float("inf")) == 50


def test_unknown_values_score_the_missing_points() -> None:
    seniority = NumericCharacteristic("seniority_years", (2.0,), (10, 30), 20, 0.0, REASON)

    assert [seniority.points_for(v) for v in (None, float("nan"), "7")] == [20, 20, 20]


@pytest.mark.parametrize(
    ("splits", "points"),
    [((1.0, 1.0), (1, 2, 3)), ((2.0, 1.0), (1, 2, 3)), ((1.0,), (1, 2, 3))],
)
def test_malformed_bins_are_refused(splits: tuple[float, ...], points: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="seniority_years"):
        NumericCharacteristic("seniority_years", splits, points, 0, 0.0, REASON)


def test_a_characteristic_the_engine_cannot_compute_is_refused() -> None:
    toy = toy_scorecard()
    alien = NumericCharacteristic("shoe_size", (40.0,), (1, 2), 0, 0.0, REASON)

    with pytest.raises(ValueError, match="shoe_size"):
        Scorecard("v", (*toy.characteristics, alien), toy.grades, 200)


def test_derived_ratios_need_positive_denominators() -> None:
    values = characteristic_values(
        {
            "monthly_income": 0.0,
            "outstanding_debt": 50.0,
            "loan_amount": 500.0,
            "purchase_price": 0.0,
            "term_months": 12.0,
            "monthly_expenses": 10.0,
            "assets": 1000.0,
        }
    )

    assert values["debt_to_income"] is None
    assert values["loan_to_price"] is None
    assert values["assets_to_loan"] == 2.0
    assert values["down_payment"] == -500.0
    assert values["residual_income"] == pytest.approx(0.0 - 10.0 - 500.0 / 12.0)


def test_money_is_scored_in_units_of_100_zmw() -> None:
    values = scoring_values(application(50_000, 12), good_profile(), clean_bureau(), Decimal(100))

    assert values["monthly_income"] == 150.0  # 15,000 ZMW
    assert values["loan_amount"] == 500.0
    assert values["past_delinquency"] == "no"
    assert values["debt_to_income"] == 0.0


def test_reasons_rank_by_shortfall_against_the_reference_applicant() -> None:
    toy = toy_scorecard()
    # seniority 10 (ref 30), partime 20 (ref 45), debt ratio 10 (ref 50), income 80 (ref 55).
    points = (10, 20, 10, 80, 50)

    assert [r.code for r in toy.adverse_reasons(points)] == [
        "EXCESSIVE_OBLIGATIONS",
        "TEMPORARY_EMPLOYMENT",
        "LENGTH_OF_EMPLOYMENT",
    ]


def test_grades_follow_the_bands() -> None:
    toy = toy_scorecard()

    assert [toy.grade(s) for s in (300, 260, 259, 230, 200, 180, 179, -50)] == list("AABBCDEE")


def test_annuity_inverts_exactly_enough() -> None:
    rate = Decimal("0.28")

    assert instalment(Decimal(50_000), rate, 12).quantize(Decimal("0.01")) == Decimal("4825.30")
    assert annuity_factor(Decimal(0), 24) == 24
    assert abs(instalment(Decimal(7_500) * annuity_factor(rate, 36), rate, 36) - 7_500) < Decimal(
        "1e-20"
    )

"""The policy file and the client profiles shipped with the service."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import pytest

from credit_assessment.domain import Application, Outcome, assess
from credit_assessment.model import (
    ModelArtifactError,
    default_model,
    default_policy,
    load_applicants,
    load_policy,
)
from credit_assessment.model.applicants import APPLICANT_NAMESPACE, SMOKE_CLIENT_ID
from credit_assessment.model.policy import DEFAULT_PATH, parse_policy


def _policy_document() -> dict[str, Any]:
    return json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))


def test_the_packaged_policy_covers_every_grade_of_the_model() -> None:
    policy, model = default_policy(), default_model()

    assert policy is default_policy()
    assert set(policy.decision_matrix) == set(model.grade_names)
    assert policy.product.max_term_months == 60
    assert policy.affordability.take_home_min_share == Decimal("0.40")
    assert not policy.skip_bureau_when_unavailable


def test_a_truncated_policy_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text(DEFAULT_PATH.read_text(encoding="utf-8")[:300], encoding="utf-8")

    with pytest.raises(ModelArtifactError) as caught:
        load_policy(path)

    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["product"].pop("annual_rate"), "missing field 'annual_rate'"),
        (lambda d: d["product"].update(annual_rate="lots"), "not a number"),
        (lambda d: d["product"].update(annual_rate=0.28), "decimal string"),
        (lambda d: d["knock_outs"][0].update(check="moon_phase"), "moon_phase"),
        (lambda d: d["knock_outs"][0].update(outcome="APPROVED"), "must DECLINE or REFER"),
        (lambda d: d["decision_matrix"]["A"].update(unaffordable="APPROVED"), "unaffordable"),
        (lambda d: d["decision_matrix"]["B"].pop("counter_offer"), "lacks"),
        (lambda d: d.update(max_reasons=7), "max_reasons"),
    ],
)
def test_policy_mistakes_are_named(change: Any, message: str) -> None:
    document = _policy_document()
    change(document)

    with pytest.raises(ModelArtifactError, match=message):
        parse_policy(document, "policy.json")


def test_json_floats_are_read_as_exact_decimals(tmp_path: Path) -> None:
    document = DEFAULT_PATH.read_text(encoding="utf-8").replace('"0.28"', "0.28")
    path = tmp_path / "policy.json"
    path.write_text(document, encoding="utf-8")

    assert load_policy(path).product.annual_rate == Decimal("0.28")


def test_the_first_applicant_is_the_smoke_test_client_and_gets_a_loan() -> None:
    first = load_applicants(1)[0]

    decision = assess(
        Application(first.client_id, Decimal(50_000), 12),
        first.profile,
        first.bureau,
        default_policy(),
        default_model(),
    )

    assert first.client_id == UUID("123e4567-e89b-12d3-a456-426614174000") == SMOKE_CLIENT_ID
    assert first.profile.client_id == first.bureau.client_id == first.client_id
    assert decision.outcome in (Outcome.APPROVED, Outcome.COUNTER_OFFER)


def test_applicants_are_the_whole_data_set_in_a_fixed_order_with_stable_ids() -> None:
    everyone = load_applicants()
    again = load_applicants(10)

    assert len(everyone) == 4_454
    assert everyone[:10] == again
    assert len({a.client_id for a in everyone}) == 4_454
    second = everyone[1]
    assert second.client_id == uuid5(APPLICANT_NAMESPACE, f"credit_data/{second.row}")
    assert load_applicants(0) == []


def test_money_is_the_data_set_value_times_100() -> None:
    by_row = {a.row: a for a in load_applicants()}
    # Row 1 of credit_data: Income 129, Expenses 73, Amount 800, Price 846, Time 60, no debt.
    one = by_row[1]

    assert one.profile.monthly_income == Decimal(12_900)
    assert one.profile.monthly_expenses == Decimal(7_300)
    assert one.profile.purchase_price == Decimal(84_600)
    assert (one.loan_amount, one.loan_term_months) == (Decimal(80_000), 60)
    assert one.profile.monthly_debt_payments == 0
    assert (one.profile.employment, one.profile.home) == ("freelance", "rent")


def test_missing_values_stay_missing_and_bureau_facts_are_plausible() -> None:
    everyone = load_applicants()

    assert sum(a.profile.monthly_income is None for a in everyone) == 381
    assert sum(a.bureau.has_delinquency for a in everyone) == 773
    assert all(0 <= a.bureau.recent_inquiries <= 5 for a in everyone)
    with_debt = [a for a in everyone if a.profile.outstanding_debt]
    assert all(a.bureau.open_accounts >= 1 for a in with_debt)
    assert all(
        a.profile.monthly_debt_payments == (a.profile.outstanding_debt or 0) * Decimal("0.03")
        for a in with_debt
        if (a.profile.outstanding_debt or 0) % 100 == 0
    )


def test_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="count"):
        load_applicants(-1)

"""Properties every decision keeps, whatever the application (hypothesis)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain_factories import CLIENT, clean_bureau, make_policy, toy_scorecard
from hypothesis import given, settings
from hypothesis import strategies as st

from credit_assessment.domain import (
    AffordabilityRules,
    Application,
    BureauReport,
    ClientProfile,
    Outcome,
    assess,
    assess_affordability,
    max_affordable_amount,
)
from credit_assessment.model import default_model, default_policy

SCORECARD = toy_scorecard()
POLICY = make_policy()
EXAMPLES = settings(max_examples=150, deadline=None)

money = st.decimals(min_value=0, max_value=200_000, places=2, allow_nan=False)
income = st.decimals(min_value=1, max_value=200_000, places=2, allow_nan=False)
terms = st.integers(min_value=1, max_value=120)
rates = st.decimals(min_value=0, max_value="0.6", places=3, allow_nan=False)
rules = st.builds(
    AffordabilityRules,
    dsr_limit=st.decimals(min_value="0.05", max_value=1, places=2),
    take_home_min_share=st.decimals(min_value=0, max_value="0.9", places=2),
    min_residual_income=st.decimals(min_value=0, max_value=5_000, places=0),
)
anything_money = st.one_of(
    st.none(),
    money,
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("NaN"), Decimal("-1"), Decimal("1e30"), Decimal("sNaN")]),
)


def _profile(**fields: Any) -> ClientProfile:
    base: dict[str, Any] = {"client_id": CLIENT, "monthly_debt_payments": Decimal(0)}
    base.update(fields)
    return ClientProfile(**base)


profiles = st.builds(
    _profile,
    monthly_income=st.one_of(st.none(), income, anything_money),
    monthly_expenses=st.one_of(money, anything_money),
    monthly_debt_payments=st.one_of(money, st.sampled_from([Decimal(-5), Decimal("NaN")])),
    outstanding_debt=anything_money,
    assets=anything_money,
    employment=st.sampled_from([None, "fixed", "freelance", "partime", "others", "astronaut"]),
    seniority_years=st.one_of(st.none(), st.integers(min_value=-3, max_value=60)),
    home=st.sampled_from([None, "owner", "rent", "parents", "priv", "other", "ignore", "boat"]),
    purchase_price=anything_money,
)
bureaus = st.one_of(
    st.none(),
    st.builds(
        BureauReport,
        client_id=st.just(CLIENT),
        has_delinquency=st.booleans(),
        recent_inquiries=st.integers(min_value=0, max_value=12),
        open_accounts=st.integers(min_value=0, max_value=20),
    ),
)
applications = st.builds(
    Application,
    client_id=st.just(CLIENT),
    loan_amount=st.one_of(money, anything_money),
    loan_term_months=st.integers(min_value=-2, max_value=400),
)


@EXAMPLES
@given(
    low=income,
    extra=st.decimals(min_value=0, max_value=100_000, places=2),
    expenses=money,
    existing=money,
    term=terms,
    rules=rules,
    rate=rates,
)
def test_more_income_never_lowers_the_affordable_amount(
    low: Decimal,
    extra: Decimal,
    expenses: Decimal,
    existing: Decimal,
    term: int,
    rules: AffordabilityRules,
    rate: Decimal,
) -> None:
    poorer = _profile(monthly_income=low, monthly_expenses=expenses, monthly_debt_payments=existing)
    richer = _profile(
        monthly_income=low + extra, monthly_expenses=expenses, monthly_debt_payments=existing
    )

    assert max_affordable_amount(richer, term, rules, rate) >= max_affordable_amount(
        poorer, term, rules, rate
    )


@EXAMPLES
@given(
    earnings=income,
    expenses=money,
    smaller=st.decimals(min_value=1_000, max_value=500_000, places=0),
    larger_by=st.decimals(min_value=0, max_value=500_000, places=0),
    term=st.integers(min_value=3, max_value=60),
)
def test_a_larger_request_never_raises_what_is_affordable_or_offered(
    earnings: Decimal, expenses: Decimal, smaller: Decimal, larger_by: Decimal, term: int
) -> None:
    profile = _profile(monthly_income=earnings, monthly_expenses=expenses)
    larger = min(smaller + larger_by, Decimal(500_000))

    small = assess_affordability(profile, smaller, term, POLICY.affordability, POLICY.product)
    large = assess_affordability(profile, larger, term, POLICY.affordability, POLICY.product)

    assert large.max_amount <= small.max_amount
    if large.offer_amount is not None:
        assert large.offer_amount <= small.max_amount
        assert large.offer_amount < larger


@EXAMPLES
@given(application=applications, profile=profiles, bureau=bureaus)
def test_same_inputs_same_decision(
    application: Application, profile: ClientProfile, bureau: BureauReport | None
) -> None:
    first = assess(application, profile, bureau, POLICY, SCORECARD)
    again = assess(application, profile, bureau, POLICY, SCORECARD)

    assert first == again


@EXAMPLES
@given(application=applications, profile=profiles, bureau=bureaus)
def test_reason_rules_hold_for_any_application(
    application: Application, profile: ClientProfile, bureau: BureauReport | None
) -> None:
    policy, model = default_policy(), default_model()

    decision = assess(application, profile, bureau, policy, model)

    codes = [r.code for r in decision.reasons]
    assert len(codes) <= 4
    assert len(set(codes)) == len(codes)
    if decision.outcome is Outcome.APPROVED:
        assert codes == []
    else:
        assert codes, "an adverse decision must say why"
    fired = decision.details["knock_outs"]
    assert isinstance(fired, list)
    fired_codes = {k.reason.code for k in policy.knock_outs if k.check in fired}
    leading = min(len(fired_codes), 4)
    assert set(codes[:leading]) <= fired_codes, "knock-out reasons come first"
    if bureau is None:
        assert decision.outcome is not Outcome.APPROVED


@EXAMPLES
@given(application=applications, profile=profiles, bureau=bureaus)
def test_counter_offers_are_smaller_and_within_the_product(
    application: Application, profile: ClientProfile, bureau: BureauReport | None
) -> None:
    decision = assess(application, profile, bureau, POLICY, SCORECARD)

    if decision.outcome is Outcome.COUNTER_OFFER:
        assert decision.offer_amount is not None
        assert POLICY.product.min_amount <= decision.offer_amount < application.loan_amount
        assert decision.offer_amount % POLICY.product.offer_unit == 0
    else:
        assert decision.offer_amount is None


@settings(max_examples=60, deadline=None)
@given(
    inquiries=st.integers(min_value=0, max_value=12),
    delinquent=st.booleans(),
    amount=st.decimals(min_value=1_000, max_value=500_000, places=0),
)
def test_policy_reasons_come_before_affordability_and_score(
    inquiries: int, delinquent: bool, amount: Decimal
) -> None:
    weak = _profile(
        monthly_income=Decimal(3_000),
        monthly_expenses=Decimal(2_500),
        employment="partime",
        seniority_years=0,
    )
    bureau = clean_bureau(has_delinquency=delinquent, recent_inquiries=inquiries)

    decision = assess(Application(CLIENT, amount, 24), weak, bureau, POLICY, SCORECARD)

    codes = [r.code for r in decision.reasons]
    if delinquent:
        assert decision.outcome is Outcome.DECLINED
        assert codes[0] == "DELINQUENT_OBLIGATIONS"
        if inquiries > 6:
            assert codes[1] == "RECENT_INQUIRIES"
    elif inquiries > 6:
        assert decision.outcome is Outcome.REFER
        assert codes == ["RECENT_INQUIRIES"]
    else:
        assert not {"DELINQUENT_OBLIGATIONS", "RECENT_INQUIRIES"} & set(codes)
        broken = decision.details.get("failed_affordability_rules")
        if broken and decision.outcome is not Outcome.APPROVED:
            affordability = {"INCOME_INSUFFICIENT", "TAKE_HOME_BELOW_MINIMUM"}
            assert codes[0] in affordability, "affordability reasons precede the scorecard's"

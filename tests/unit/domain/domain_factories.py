"""A small scorecard whose points can be added up by hand, and a policy with pinned numbers.

Toy scorecard (money in units of 100 ZMW, like the real one):

==================  ================================  ====================  =======  =========
characteristic      bins                              points                missing  reference
==================  ================================  ====================  =======  =========
seniority_years     <2 | 2-4 | >=5                    10 | 30 | 50          20       30
employment          fixed | freelance,others | partime  60 | 30 | 20        25       45
debt_to_income      <1 | 1-3 | >=3                    60 | 40 | 10          30       50
monthly_income      <100 | 100-199 | >=200            40 | 60 | 80          30       55
past_delinquency    no | yes                          50 | 0                20       50
==================  ================================  ====================  =======  =========

Grades: A >= 260, B >= 230, C >= 200 (the reference score), D >= 180, E below.
Policy: 1,000-500,000 ZMW over 3-60 months at 28% a year; DSR <= 50%; take-home >= 40%;
residual income >= 0; more than 6 recent inquiries REFERs.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any
from uuid import UUID

from credit_assessment.domain import (
    Application,
    BureauReport,
    CategoricalCharacteristic,
    ClientProfile,
    GradeBand,
    NumericCharacteristic,
    Policy,
    Reason,
    Scorecard,
)
from credit_assessment.model.policy import DEFAULT_PATH, parse_policy

CLIENT = UUID("00000000-0000-4000-8000-000000000001")


def toy_scorecard() -> Scorecard:
    return Scorecard(
        version="toy-1",
        characteristics=(
            NumericCharacteristic(
                "seniority_years",
                (2.0, 5.0),
                (10, 30, 50),
                20,
                30.0,
                Reason("LENGTH_OF_EMPLOYMENT", "Length of employment"),
            ),
            CategoricalCharacteristic(
                "employment",
                (frozenset({"fixed"}), frozenset({"freelance", "others"}), frozenset({"partime"})),
                (60, 30, 20),
                25,
                45.0,
                Reason("TEMPORARY_EMPLOYMENT", "Temporary or irregular employment"),
            ),
            NumericCharacteristic(
                "debt_to_income",
                (1.0, 3.0),
                (60, 40, 10),
                30,
                50.0,
                Reason("EXCESSIVE_OBLIGATIONS", "Excessive obligations in relation to income"),
            ),
            NumericCharacteristic(
                "monthly_income",
                (100.0, 200.0),
                (40, 60, 80),
                30,
                55.0,
                Reason("INCOME_INSUFFICIENT", "Income insufficient for amount of credit requested"),
            ),
            CategoricalCharacteristic(
                "past_delinquency",
                (frozenset({"no"}), frozenset({"yes"})),
                (50, 0),
                20,
                50.0,
                Reason(
                    "DELINQUENT_OBLIGATIONS",
                    "Delinquent past or present credit obligations with others",
                ),
            ),
        ),
        grades=(
            GradeBand("A", 260),
            GradeBand("B", 230),
            GradeBand("C", 200),
            GradeBand("D", 180),
            GradeBand("E", 0),
        ),
        reference_score=200,
        money_unit_zmw=Decimal(100),
    )


def policy_document() -> dict[str, Any]:
    """The packaged policy file with its numbers pinned to what the golden cases assume."""
    document = json.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    document["version"] = "test-policy"
    document["product"] = {
        "min_amount": "1000",
        "max_amount": "500000",
        "min_term_months": 3,
        "max_term_months": 60,
        "annual_rate": "0.28",
        "offer_unit": "500",
    }
    document["affordability"] = {
        "dsr_limit": "0.50",
        "take_home_min_share": "0.40",
        "min_residual_income": "0",
    }
    document["bureau"] = {"skip_when_unavailable": False, "max_recent_inquiries": 6}
    return document


def make_policy(**changes: Any) -> Policy:
    """The pinned policy, with top-level sections replaced or merged (dicts merge)."""
    document = policy_document()
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(document.get(key), dict):
            document[key] = {**document[key], **copy.deepcopy(value)}
        else:
            document[key] = copy.deepcopy(value)
    return parse_policy(document)


def good_profile(**changes: Any) -> ClientProfile:
    """Scores 280 (grade A) on the toy card: 50 + 60 + 60 + 60 + 50."""
    fields: dict[str, Any] = {
        "client_id": CLIENT,
        "monthly_income": Decimal(15_000),
        "monthly_expenses": Decimal(5_000),
        "monthly_debt_payments": Decimal(0),
        "outstanding_debt": Decimal(0),
        "assets": Decimal(100_000),
        "employment": "fixed",
        "seniority_years": 6,
        "home": "owner",
        "purchase_price": None,
    }
    fields.update(changes)
    return ClientProfile(**fields)


def clean_bureau(**changes: Any) -> BureauReport:
    fields: dict[str, Any] = {"client_id": CLIENT, "recent_inquiries": 1, "open_accounts": 2}
    fields.update(changes)
    return BureauReport(**fields)


def application(amount: int | str | Decimal = 50_000, term: int = 12) -> Application:
    return Application(CLIENT, Decimal(amount), term)

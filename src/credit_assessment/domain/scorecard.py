"""The scorecard: each characteristic of an application falls in one bin, each bin is worth points.

The score is the sum of the points (600 points at 50:1 good:bad odds, 20 points to double the
odds). Bins, points and grade bands come from the trained artifact
(``credit_assessment/model/scorecard.json``); this module only evaluates them, in plain Python,
and reproduces the training library's scores exactly.

Scorecard units: the training data holds money in units of 100 ZMW, so money is divided by
:attr:`Scorecard.money_unit_zmw` before it meets a bin split. The same
:func:`characteristic_values` turns raw inputs into characteristics at training and at serving
time, so the derived ratios are computed by one piece of code.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise

from credit_assessment.domain.knockouts import valid_money
from credit_assessment.domain.types import Application, BureauReport, ClientProfile, Reason

Value = float | str | None
"""A characteristic's value: a number (scorecard units), a category, or None when unknown."""

CATEGORICAL = ("home", "employment", "past_delinquency")
NUMERIC_INPUTS = (
    "seniority_years",
    "term_months",
    "monthly_expenses",
    "monthly_income",
    "assets",
    "outstanding_debt",
    "loan_amount",
    "purchase_price",
)
DERIVED = ("loan_to_price", "debt_to_income", "residual_income", "down_payment", "assets_to_loan")
KNOWN_CHARACTERISTICS = frozenset(CATEGORICAL + NUMERIC_INPUTS + DERIVED)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or not denominator > 0:
        return None
    return numerator / denominator


def _num(values: Mapping[str, Value], name: str) -> float | None:
    value = values.get(name)
    if value is None or isinstance(value, str) or math.isnan(value):
        return None
    return value


def characteristic_values(raw: Mapping[str, Value]) -> dict[str, Value]:
    """Inputs (scorecard units) plus the derived ratios the scorecard was trained on."""
    income = _num(raw, "monthly_income")
    expenses = _num(raw, "monthly_expenses")
    amount = _num(raw, "loan_amount")
    price = _num(raw, "purchase_price")
    term = _num(raw, "term_months")
    values = dict(raw)
    values["loan_to_price"] = _ratio(amount, price)
    values["debt_to_income"] = _ratio(_num(raw, "outstanding_debt"), income)
    instalment = _ratio(amount, term)
    values["residual_income"] = (
        None
        if income is None or expenses is None or instalment is None
        else income - expenses - instalment
    )
    values["down_payment"] = None if price is None or amount is None else price - amount
    values["assets_to_loan"] = _ratio(_num(raw, "assets"), amount)
    return values


def _units(value: Decimal | None, unit: float) -> float | None:
    if value is None or not valid_money(value):
        return None
    return float(value) / unit


def scoring_values(
    application: Application,
    profile: ClientProfile,
    bureau_report: BureauReport | None,
    money_unit_zmw: Decimal,
) -> dict[str, Value]:
    """What the scorecard sees of one application; invalid or unknown inputs become None."""
    unit = float(money_unit_zmw)
    seniority = profile.seniority_years
    term = application.loan_term_months
    raw: dict[str, Value] = {
        "seniority_years": float(seniority)
        if isinstance(seniority, int) and seniority >= 0
        else None,
        "home": profile.home,
        "term_months": float(term) if isinstance(term, int) and term > 0 else None,
        "past_delinquency": None
        if bureau_report is None
        else ("yes" if bureau_report.has_delinquency else "no"),
        "employment": profile.employment,
        "monthly_expenses": _units(profile.monthly_expenses, unit),
        "monthly_income": _units(profile.monthly_income, unit),
        "assets": _units(profile.assets, unit),
        "outstanding_debt": _units(profile.outstanding_debt, unit),
        "loan_amount": _units(application.loan_amount, unit),
        "purchase_price": _units(profile.purchase_price, unit),
    }
    return characteristic_values(raw)


@dataclass(frozen=True, slots=True)
class NumericCharacteristic:
    """Bins ``(-inf, s0), [s0, s1), ..., [sn, inf)``; unknown values score ``missing_points``."""

    name: str
    splits: tuple[float, ...]
    points: tuple[int, ...]
    missing_points: int
    reference_points: float
    reason: Reason

    def __post_init__(self) -> None:
        if len(self.points) != len(self.splits) + 1:
            raise ValueError(
                f"characteristic {self.name!r}: {len(self.points)} points for "
                f"{len(self.splits)} splits (expected {len(self.splits) + 1})"
            )
        if any(b <= a for a, b in pairwise(self.splits)):
            raise ValueError(f"characteristic {self.name!r}: splits are not strictly increasing")
        if any(math.isnan(s) for s in self.splits):
            raise ValueError(f"characteristic {self.name!r}: a split is NaN")

    def points_for(self, value: Value) -> int:
        if value is None or isinstance(value, str) or math.isnan(value):
            return self.missing_points
        return self.points[bisect_right(self.splits, value)]


@dataclass(frozen=True, slots=True)
class CategoricalCharacteristic:
    """Groups of categories; an unknown or unseen category scores ``missing_points``."""

    name: str
    groups: tuple[frozenset[str], ...]
    points: tuple[int, ...]
    missing_points: int
    reference_points: float
    reason: Reason
    _lookup: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.points) != len(self.groups):
            raise ValueError(
                f"characteristic {self.name!r}: {len(self.points)} points for "
                f"{len(self.groups)} category groups"
            )
        lookup: dict[str, int] = {}
        for group, points in zip(self.groups, self.points, strict=True):
            for category in group:
                if category in lookup:
                    raise ValueError(
                        f"characteristic {self.name!r}: category {category!r} in two groups"
                    )
                lookup[category] = points
        object.__setattr__(self, "_lookup", lookup)

    def points_for(self, value: Value) -> int:
        if not isinstance(value, str):
            return self.missing_points
        return self._lookup.get(value, self.missing_points)


Characteristic = NumericCharacteristic | CategoricalCharacteristic


@dataclass(frozen=True, slots=True)
class GradeBand:
    grade: str
    min_score: int


@dataclass(frozen=True, slots=True)
class Scorecard:
    """A trained scorecard. ``grades`` run from best to worst; the last band takes every score."""

    version: str
    characteristics: tuple[Characteristic, ...]
    grades: tuple[GradeBand, ...]
    reference_score: int
    money_unit_zmw: Decimal = Decimal(100)
    base_points: int = 0

    def __post_init__(self) -> None:
        if not self.grades:
            raise ValueError("scorecard has no grade bands")
        scores = [band.min_score for band in self.grades]
        if any(b >= a for a, b in pairwise(scores)):
            raise ValueError("grade bands must run from the highest min_score to the lowest")
        names = [c.name for c in self.characteristics]
        if len(set(names)) != len(names):
            raise ValueError("a characteristic appears twice")
        unknown = set(names) - KNOWN_CHARACTERISTICS
        if unknown:
            raise ValueError(f"characteristics unknown to this engine: {sorted(unknown)}")
        if not self.money_unit_zmw > 0:
            raise ValueError("money_unit_zmw must be positive")

    def points(self, values: Mapping[str, Value]) -> tuple[int, ...]:
        """Points of each characteristic, in the scorecard's order."""
        return tuple(c.points_for(values.get(c.name)) for c in self.characteristics)

    def score(self, values: Mapping[str, Value]) -> int:
        return self.base_points + sum(self.points(values))

    def grade(self, score: int) -> str:
        for band in self.grades:
            if score >= band.min_score:
                return band.grade
        return self.grades[-1].grade

    @property
    def grade_names(self) -> tuple[str, ...]:
        return tuple(band.grade for band in self.grades)

    def adverse_reasons(self, points: tuple[int, ...]) -> list[Reason]:
        """Reasons ranked by shortfall against an applicant at the reference (cutoff) score.

        Characteristics sharing a reason code add their shortfalls; only shortfalls above zero
        count. Ties keep the scorecard's order, so the ranking is deterministic.
        """
        shortfall: dict[str, float] = {}
        reason_of: dict[str, Reason] = {}
        for characteristic, got in zip(self.characteristics, points, strict=True):
            code = characteristic.reason.code
            shortfall[code] = shortfall.get(code, 0.0) + characteristic.reference_points - got
            reason_of.setdefault(code, characteristic.reason)
        ranked = sorted(
            (code for code, gap in shortfall.items() if gap > 0),
            key=lambda code: -shortfall[code],
        )
        return [reason_of[code] for code in ranked]

"""Comparison at the level of credit outcomes: pure functions over pairs.

- ``differences``: which fields of one pair differ under the match rules (empty: a match);
- ``agreement_matrix``: legacy decision × new decision counts;
- ``grade_migration``: legacy grade × new grade counts;
- ``approval_rates``: each side's approval rate with its Wilson interval, and the paired shift;
- ``compare_reasons``: reasons as sets (mean Jaccard, codes given by one side only, and the
  commonest "legacy declined with X, new declined with Y");
- ``compare_scores``: Spearman rank correlation, and a score shift only on a shared scale.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from golive.analysis.stats import (
    Difference,
    paired_difference,
    spearman,
    wilson_interval,
    z_two_sided,
)
from golive.validation.config import DECISIONS, FIELDS, GRADES, MatchRules
from golive.validation.records import Pair, Side

NO_GRADE = "?"
CREDIT_OFFERED = frozenset({"APPROVED", "COUNTER_OFFER"})


def decision_class(decision: str) -> str:
    return "offered" if decision in CREDIT_OFFERED else decision


def grade_distance(a: str | None, b: str | None) -> int | None:
    if a is None or b is None:
        return None
    return abs(GRADES.index(a) - GRADES.index(b))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a ∩ b| / |a ∪ b|; two empty sets agree (1.0)."""
    union = a | b
    return len(a & b) / len(union) if union else 1.0


def same_scale(pair: Pair) -> bool:
    return pair.legacy.scale == pair.new.scale


def differences(pair: Pair, rules: MatchRules) -> frozenset[str]:
    """The fields on which the two sides disagree under ``rules`` (empty: the pair matches).

    A field that cannot be compared (a missing grade, scores on different scales) never counts
    as a difference; the report says how many pairs each field was compared on.
    """
    legacy, new = pair.legacy, pair.new
    out: list[str] = []
    if rules.decision == "exact":
        if legacy.decision != new.decision:
            out.append("decision")
    elif decision_class(legacy.decision) != decision_class(new.decision):
        out.append("decision")
    if rules.grade != "ignore":
        distance = grade_distance(legacy.grade, new.grade)
        allowed = 0 if rules.grade == "exact" else 1
        if distance is not None and distance > allowed:
            out.append("grade")
    if (
        rules.score_abs_tolerance is not None
        and same_scale(pair)
        and legacy.score is not None
        and new.score is not None
        and abs(legacy.score - new.score) > rules.score_abs_tolerance
    ):
        out.append("score")
    if rules.reasons != "ignore" and legacy.reasons != new.reasons:
        overlap = jaccard(legacy.reasons, new.reasons)
        if rules.reasons == "exact" or overlap < rules.reasons_min_jaccard:
            out.append("reasons")
    return frozenset(out)


def agreement_matrix(pairs: Sequence[Pair]) -> dict[str, dict[str, int]]:
    """Counts by legacy decision (rows) and new decision (columns), every cell present."""
    counts = Counter((p.legacy.decision, p.new.decision) for p in pairs)
    return {row: {col: counts[(row, col)] for col in DECISIONS} for row in DECISIONS}


def grade_migration(pairs: Sequence[Pair]) -> dict[str, dict[str, int]]:
    """Counts by legacy grade (rows) and new grade (columns); "?" when a side has none."""
    labels = (*GRADES, NO_GRADE)
    counts = Counter((p.legacy.grade or NO_GRADE, p.new.grade or NO_GRADE) for p in pairs)
    return {row: {col: counts[(row, col)] for col in labels} for row in labels}


def is_approval(side: Side, rules: MatchRules) -> bool:
    if side.decision == "APPROVED":
        return True
    return rules.counter_offer_is_approval and side.decision == "COUNTER_OFFER"


@dataclass(frozen=True, slots=True)
class Rate:
    events: int
    total: int
    lower: float
    upper: float

    @property
    def value(self) -> float:
        return self.events / self.total if self.total else 0.0


def rate(events: int, total: int, confidence: float = 0.95) -> Rate:
    lower, upper = wilson_interval(events, total, z=z_two_sided(confidence))
    return Rate(events, total, lower, upper)


@dataclass(frozen=True, slots=True)
class ApprovalRates:
    legacy: Rate
    new: Rate
    shift: Difference  # new − legacy over the same applications


def approval_rates(
    pairs: Sequence[Pair], rules: MatchRules, confidence: float = 0.95
) -> ApprovalRates:
    legacy_yes = new_yes = gained = lost = 0
    for pair in pairs:
        a, b = is_approval(pair.legacy, rules), is_approval(pair.new, rules)
        legacy_yes += a
        new_yes += b
        gained += b and not a
        lost += a and not b
    n = len(pairs)
    return ApprovalRates(
        rate(legacy_yes, n, confidence),
        rate(new_yes, n, confidence),
        paired_difference(gained, lost, n, confidence),
    )


@dataclass(frozen=True, slots=True)
class ReasonComparison:
    mean_jaccard: float | None  # over pairs where at least one side gives a reason
    compared: int
    legacy_only: dict[str, int]  # code -> pairs where only the legacy side gives it
    new_only: dict[str, int]
    both: dict[str, int]
    declined_transitions: list[tuple[str, str, int]] = field(default_factory=list)


def _codes(reasons: frozenset[str]) -> str:
    return ", ".join(sorted(reasons)) or "(none)"


def compare_reasons(pairs: Sequence[Pair], top: int = 10) -> ReasonComparison:
    total = 0.0
    compared = 0
    legacy_only: Counter[str] = Counter()
    new_only: Counter[str] = Counter()
    both: Counter[str] = Counter()
    transitions: Counter[tuple[str, str]] = Counter()
    for pair in pairs:
        a, b = pair.legacy.reasons, pair.new.reasons
        if a or b:
            compared += 1
            total += jaccard(a, b)
        legacy_only.update(a - b)
        new_only.update(b - a)
        both.update(a & b)
        if pair.legacy.decision == "DECLINED" and pair.new.decision == "DECLINED" and a != b:
            transitions[(_codes(a), _codes(b))] += 1
    return ReasonComparison(
        mean_jaccard=total / compared if compared else None,
        compared=compared,
        legacy_only=dict(legacy_only.most_common()),
        new_only=dict(new_only.most_common()),
        both=dict(both.most_common()),
        declined_transitions=[(x, y, n) for (x, y), n in transitions.most_common(top)],
    )


@dataclass(frozen=True, slots=True)
class ScoreComparison:
    scored: int  # pairs with a score on both sides
    spearman: float | None
    same_scale: int  # pairs whose two scores are on one scale
    mean_shift: float | None  # new − legacy, same-scale pairs only
    median_shift: float | None
    within_tolerance: int | None  # same-scale pairs with |Δ| ≤ tolerance


def compare_scores(pairs: Sequence[Pair], rules: MatchRules) -> ScoreComparison:
    xs: list[float] = []
    ys: list[float] = []
    shifts: list[int] = []
    for pair in pairs:
        a, b = pair.legacy.score, pair.new.score
        if a is None or b is None:
            continue
        xs.append(a)
        ys.append(b)
        if same_scale(pair):
            shifts.append(b - a)
    tolerance = rules.score_abs_tolerance
    within = None
    if shifts and tolerance is not None:
        within = sum(1 for d in shifts if abs(d) <= tolerance)
    return ScoreComparison(
        scored=len(xs),
        spearman=spearman(xs, ys),
        same_scale=len(shifts),
        mean_shift=statistics.fmean(shifts) if shifts else None,
        median_shift=float(statistics.median(shifts)) if shifts else None,
        within_tolerance=within,
    )


def field_mismatches(diffs: Sequence[frozenset[str]]) -> dict[str, int]:
    counts = Counter(f for d in diffs for f in d)
    return {name: counts[name] for name in FIELDS}

"""The comparison maths against hand-computed tables: Wilson bounds, the paired approval shift,
the two-proportion test, PSI, Spearman, the agreement and grade matrices, the match rules,
segments and anomalies."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from golive.analysis.stats import (
    bin_counts,
    decile_edges,
    paired_difference,
    psi,
    spearman,
    two_proportion_z,
    wilson_interval,
    z_two_sided,
)
from golive.validation.anomalies import (
    ALERT,
    OK,
    SKIPPED,
    approval_shift,
    psi_legacy_vs_new,
    psi_new_vs_training,
    window_changes,
    windows,
)
from golive.validation.compare import (
    agreement_matrix,
    approval_rates,
    compare_reasons,
    compare_scores,
    differences,
    grade_migration,
    jaccard,
)
from golive.validation.config import Anomalies, MatchRules, TrainingScores, ValidationConfig
from golive.validation.records import SCALE_LEGACY, SCALE_NEW, Application, Pair, Side
from golive.validation.segments import SegmentTally

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def pair(
    legacy: str = "APPROVED",
    new: str = "APPROVED",
    *,
    lg: str | None = "B",
    ng: str | None = "B",
    ls: int | None = 700,
    ns: int | None = 560,
    lr: tuple[str, ...] = (),
    nr: tuple[str, ...] = (),
    term: int = 24,
    amount: float = 20_000,
    existing: bool = False,
    at: datetime = T0,
    same_scale: bool = False,
    ref: str = "app-1",
) -> Pair:
    return Pair(
        Application(ref, "00000000-0000-0000-0000-000000000001", amount, term, at, existing),
        Side(legacy, ls, lg, frozenset(lr), SCALE_NEW if same_scale else SCALE_LEGACY),
        Side(new, ns, ng, frozenset(nr), SCALE_NEW, "scorecard-test"),
    )


# --- stats -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "n", "lower", "upper"),
    [
        # p = 0.1, z = 1.959964: centre (0.1 + 0.019207)/1.038415 = 0.114800,
        # half 1.959964 * sqrt(0.0009 + 0.0000960365) / 1.038415 = 0.059569
        (10, 100, 0.055229, 0.174369),
        (0, 50, 0.0, 0.071348),  # z²/(n + z²) = 3.841459 / 53.841459
        (50, 50, 0.928652, 1.0),
        (1, 2, 0.094531, 0.905469),
    ],
)
def test_wilson_interval_matches_hand_computation(x: int, n: int, lower: float, upper: float):
    lo, hi = wilson_interval(x, n, z=z_two_sided(0.95))
    assert lo == pytest.approx(lower, abs=1e-5)
    assert hi == pytest.approx(upper, abs=1e-5)


def test_wilson_without_data_is_the_whole_range():
    assert wilson_interval(0, 0, z=z_two_sided(0.95)) == (0.0, 1.0)


def test_wilson_refuses_impossible_counts():
    for successes, total in ((5, 4), (-1, 10), (0, -1)):
        with pytest.raises(ValueError, match="invalid counts"):
            wilson_interval(successes, total, z=1.96)


def test_paired_difference():
    # b = 30 gained, c = 10 lost, n = 200: (30-10)/200 = 0.10;
    # var = (40 - 20²/200) / 200² = 38 / 40000; half = 1.959964 * 0.0308221 = 0.060410
    d = paired_difference(30, 10, 200)
    assert d.value == pytest.approx(0.10)
    assert d.lower == pytest.approx(0.039590, abs=1e-5)
    assert d.upper == pytest.approx(0.160410, abs=1e-5)


def test_two_proportion_z_one_sided():
    # later window 20/100 against the earlier 10/100, H1: the later one is greater.
    # pooled 0.15; se = sqrt(0.15 * 0.85 * 0.02) = 0.0504975; z = 0.1 / se = 1.980295
    test = two_proportion_z(20, 100, 10, 100, alternative="greater")
    assert test.z == pytest.approx(1.980295, abs=1e-5)
    assert test.p_value == pytest.approx(0.023835, abs=1e-5)
    # the later window lower: the same |z|, the other sign, no evidence of a rise
    fell = two_proportion_z(10, 100, 20, 100, alternative="greater")
    assert fell.z == pytest.approx(-1.980295, abs=1e-5)
    assert fell.p_value == pytest.approx(1 - 0.023835, abs=1e-5)
    assert two_proportion_z(0, 10, 0, 10, alternative="greater").p_value == 1.0


def test_psi_matches_hand_computation():
    # (0.6 - 0.5) ln(0.6/0.5) + (0.4 - 0.5) ln(0.4/0.5) = 0.0182322 + 0.0223144
    assert psi([50, 50], [60, 40]) == pytest.approx(0.0405465, abs=1e-6)
    assert psi([0.25] * 4, [0.25] * 4) == 0.0
    # an empty bin is floored at 0.0001: (0.0001 - 0.5) ln(0.0001 / 0.5) + (0.5) ln(1 / 0.5)
    expected = (0.0001 - 0.5) * math.log(0.0001 / 0.5) + (1.0 - 0.5) * math.log(1.0 / 0.5)
    assert psi([1, 1], [0, 10]) == pytest.approx(expected)


def test_deciles_and_bins():
    values = list(range(1, 101))
    assert decile_edges(values) == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert bin_counts(values, decile_edges(values)) == [10] * 10
    # heavy ties collapse bins; the top edge never equals the maximum
    assert decile_edges([1] * 50 + [2] * 50) == [1]
    assert decile_edges([5] * 10) == []


def test_spearman_with_ties_matches_hand_computation():
    # ranks y: 5→1, 6→2, 7→3.5, 8→5, 7→3.5; Σ(dx dy) = 8, Σdx² = 10, Σdy² = 9.5
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95))
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None


# --- comparison ------------------------------------------------------------------------------


def test_agreement_matrix_and_approval_rates():
    pairs = (
        [pair("APPROVED", "APPROVED")] * 6
        + [pair("APPROVED", "DECLINED")] * 2
        + [pair("DECLINED", "DECLINED")] * 3
        + [pair("REFER", "COUNTER_OFFER")] * 1
        + [pair("DECLINED", "APPROVED")] * 1
    )
    matrix = agreement_matrix(pairs)
    assert matrix["APPROVED"] == {"APPROVED": 6, "COUNTER_OFFER": 0, "REFER": 0, "DECLINED": 2}
    assert matrix["DECLINED"] == {"APPROVED": 1, "COUNTER_OFFER": 0, "REFER": 0, "DECLINED": 3}
    assert matrix["REFER"]["COUNTER_OFFER"] == 1
    assert sum(sum(row.values()) for row in matrix.values()) == 13
    rates = approval_rates(pairs, MatchRules())
    assert (rates.legacy.events, rates.new.events, rates.legacy.total) == (8, 8, 13)
    # gained 2 (REFER→COUNTER_OFFER, DECLINED→APPROVED), lost 2 (APPROVED→DECLINED)
    assert rates.shift.value == 0.0
    no_counter = approval_rates(pairs, MatchRules(counter_offer_is_approval=False))
    assert no_counter.new.events == 7


def test_grade_migration():
    pairs = [pair(lg="A", ng="B")] * 2 + [pair(lg="C", ng="C")] + [pair(lg=None, ng="E")]
    grades = grade_migration(pairs)
    assert grades["A"]["B"] == 2
    assert grades["C"]["C"] == 1
    assert grades["?"]["E"] == 1
    assert grades["B"]["B"] == 0


def test_match_rules():
    rules = MatchRules(score_abs_tolerance=5, grade="within_one", reasons="jaccard")
    assert differences(pair(lg="B", ng="C"), rules) == frozenset()
    assert differences(pair(lg="B", ng="D"), rules) == {"grade"}
    assert differences(pair(lg=None, ng="E"), rules) == frozenset()  # not comparable
    # scores on different scales are never compared pair by pair
    assert differences(pair(ls=800, ns=500), rules) == frozenset()
    assert differences(pair(ls=560, ns=566, same_scale=True), rules) == {"score"}
    assert differences(pair(ls=560, ns=565, same_scale=True), rules) == frozenset()
    assert differences(pair("APPROVED", "COUNTER_OFFER"), rules) == {"decision"}
    same_class = MatchRules(decision="same_class")
    assert differences(pair("APPROVED", "COUNTER_OFFER"), same_class) == frozenset()
    # Jaccard {A,B} vs {A,C} = 1/3 < 0.5
    assert differences(pair(lr=("A", "B"), nr=("A", "C")), rules) == {"reasons"}
    assert differences(pair(lr=("A", "B"), nr=("A", "B", "C")), rules) == frozenset()  # 2/3
    assert differences(pair(lr=("A",), nr=("B",)), MatchRules()) == frozenset()  # ignored


def test_reasons_as_sets():
    assert jaccard(frozenset(), frozenset()) == 1.0
    assert jaccard(frozenset("AB"), frozenset("BC")) == pytest.approx(1 / 3)
    pairs = [
        pair("DECLINED", "DECLINED", lr=("INCOME",), nr=("INCOME", "DTI")),
        pair("DECLINED", "DECLINED", lr=("INCOME",), nr=("INCOME", "DTI")),
        pair("DECLINED", "DECLINED", lr=("DELINQ",), nr=("DELINQ",)),
        pair("APPROVED", "APPROVED"),
    ]
    result = compare_reasons(pairs)
    assert result.compared == 3
    assert result.mean_jaccard == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert result.new_only == {"DTI": 2}
    assert result.both == {"INCOME": 2, "DELINQ": 1}
    assert result.declined_transitions == [("INCOME", "DTI, INCOME", 2)]


def test_scores_compared_by_rank_and_shift_only_on_one_scale():
    cross = [pair(ls=s, ns=450 + s // 4) for s in (400, 500, 600, 700, 800)]
    scores = compare_scores(cross, MatchRules())
    assert scores.spearman == pytest.approx(1.0)
    assert scores.same_scale == 0
    assert scores.mean_shift is None
    same = [pair(ls=550, ns=552, same_scale=True), pair(ls=560, ns=570, same_scale=True)]
    shifted = compare_scores(same, MatchRules(score_abs_tolerance=5))
    assert (shifted.mean_shift, shifted.median_shift, shifted.within_tolerance) == (6.0, 6.0, 1)


# --- segments --------------------------------------------------------------------------------


def test_segment_flagged_only_on_the_lower_bound_and_with_enough_pairs():
    config = ValidationConfig.model_validate(
        {"segments": {"mismatch_tolerance": 0.05, "min_count": 50}}
    )
    tally = SegmentTally(config)
    # term 25-36: 100 pairs, 20 unexplained: centre 0.2192073 / 1.0384146 = 0.211098,
    # half 1.959964 * sqrt(0.0016 + 0.0000960) / 1.0384146 = 0.077731 -> lower 13.34%: flagged
    for i in range(100):
        tally.add(pair(term=30), mismatched=i < 20, unexplained=i < 20)
    # term <=12: 100 pairs, 8 unexplained: 8% > 5%, but centre 0.095537 - half 0.054444 =
    # lower 4.11% is not above 5%: not flagged
    for i in range(100):
        tally.add(pair(term=12), mismatched=i < 8, unexplained=i < 8)
    # term 49-60: 10 pairs, all unexplained -> too few to judge
    for _ in range(10):
        tally.add(pair(term=60), mismatched=True, unexplained=True)
    by_label = {(s.dimension, s.label): s for s in tally.results()}
    assert by_label[("loan_term", "25–36 m")].flagged
    assert by_label[("loan_term", "25–36 m")].unexplained.lower == pytest.approx(0.133367, abs=1e-5)
    assert not by_label[("loan_term", "≤12 m")].flagged
    assert by_label[("loan_term", "≤12 m")].unexplained.lower == pytest.approx(0.041093, abs=1e-5)
    short = by_label[("loan_term", "49–60 m")]
    assert not short.flagged and "not judged" in short.note
    assert by_label[("client", "new")].total == 210
    labels = [s.label for s in tally.results() if s.dimension == "loan_term"]
    assert labels == ["≤12 m", "25–36 m", "49–60 m"]


# --- anomalies -------------------------------------------------------------------------------


def test_psi_legacy_vs_new_uses_grades_across_scales():
    limits = Anomalies(min_count=10)
    pairs = [pair(lg="A", ng="A")] * 50 + [pair(lg="B", ng="A")] * 50
    result = psi_legacy_vs_new(pairs, limits)
    assert result.figures["basis"] == "grades"
    # legacy A 50%, B 50%; new A 100%, B floored at 0.0001
    expected = (1.0 - 0.5) * math.log(1.0 / 0.5) + (0.0001 - 0.5) * math.log(0.0001 / 0.5)
    assert result.value == pytest.approx(expected, rel=1e-3)
    assert result.status == ALERT


def test_psi_legacy_vs_new_on_one_scale_uses_legacy_deciles():
    limits = Anomalies(min_count=10)
    pairs = [pair(ls=s, ns=s, same_scale=True) for s in range(500, 600)]
    result = psi_legacy_vs_new(pairs, limits)
    assert result.figures["basis"] == "score deciles"
    assert result.value == pytest.approx(0.0)
    assert result.status == OK


def test_psi_new_vs_training():
    training = TrainingScores(edges=[508, 528, 548, 568], shares=[0.2] * 5)
    limits = Anomalies(min_count=10, training=training)
    pairs = [pair(ns=s) for s in (500, 520, 540, 560, 600) * 20]
    assert psi_new_vs_training(pairs, limits).value == pytest.approx(0.0)
    assert psi_new_vs_training(pairs, Anomalies(min_count=10)).status == SKIPPED


def test_approval_shift_flagged_only_beyond_tolerance_with_confidence():
    limits = Anomalies(min_count=10, approval_shift_tolerance=0.05)
    # 100 pairs: 20 lose the approval -> shift -20%, interval about [-27.8%, -12.2%]
    pairs = [pair("APPROVED", "DECLINED")] * 20 + [pair()] * 80
    assert approval_shift(approval_rates(pairs, MatchRules()), limits).status == ALERT
    # 6 of 100 lose it: -6%, interval reaches -1.3%: not beyond -5% with confidence
    pairs = [pair("APPROVED", "DECLINED")] * 6 + [pair()] * 94
    assert approval_shift(approval_rates(pairs, MatchRules()), limits).status == OK


def test_window_change_needs_a_significant_rise():
    limits = Anomalies(window_minutes=60, window_min_count=100, window_min_increase=0.02)
    hour = timedelta(hours=1)
    steady = [(T0 + i * timedelta(seconds=20), i % 20 == 0) for i in range(360)]  # 5% each hour
    series = windows(steady, 60)
    assert [w.total for w in series] == [180, 180]
    assert window_changes(series, limits).status == OK
    jump = [(T0, i < 5) for i in range(200)] + [(T0 + hour, i < 40) for i in range(200)]
    result = window_changes(windows(jump, 60), limits)
    assert result.status == ALERT
    assert result.value == pytest.approx(0.175)
    sparse = [(T0, True)] * 5 + [(T0 + hour, True)] * 5
    assert window_changes(windows(sparse, 60), limits).status == SKIPPED


@pytest.mark.parametrize(
    ("earlier", "later", "status"),
    [
        (5, 40, ALERT),  # the unexplained rate rose 2.5% -> 20%: one-sided p far below alpha
        (40, 5, OK),  # the same change downwards is never a finding
    ],
)
def test_window_change_is_judged_in_the_direction_of_a_rise(earlier, later, status):
    limits = Anomalies(window_minutes=60, window_min_count=100, window_min_increase=0.0)
    hour = timedelta(hours=1)
    points = [(T0, i < earlier) for i in range(200)] + [(T0 + hour, i < later) for i in range(200)]
    result = window_changes(windows(points, 60), limits)
    assert result.status == status
    if status == ALERT:
        (flagged,) = result.figures["flagged"]
        assert flagged["p_value"] < 1e-6

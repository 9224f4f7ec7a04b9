"""The judges, case by case: hand-checked tables, and the p-values against SciPy."""

from __future__ import annotations

import math
import random

import pytest

from golive.analysis import Histogram, Verdict, error_rate, latency, mismatch_rate, threshold
from golive.analysis.judges import ratio_threshold
from golive.analysis.stats import (
    fisher_greater,
    group,
    hodges_lehmann,
    mann_whitney,
    newcombe_difference,
    proportion_test_greater,
    quantile,
    two_proportion_z,
    wilson_interval,
    z_for,
    z_two_sided,
)

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# --------------------------------------------------------------------------- error ratio


@pytest.mark.parametrize(
    ("new", "base", "verdict", "words"),
    [
        # below the minimum on either side: no verdict
        ((50, 100), (2, 1000), Verdict.INCONCLUSIVE, "only 100 new-path"),
        ((0, 1000), (0, 150), Verdict.INCONCLUSIVE, "150 legacy requests"),
        # 5.1% vs 0.2% over 1000 each: significant and 4.9 pp beyond 1 pp
        ((51, 1000), (2, 1000), Verdict.FAIL, "new path error ratio 5.1% vs legacy 0.20%: higher"),
        # same ratios: nothing to see
        ((2, 1000), (2, 1000), Verdict.PASS, "no significant increase"),
        ((0, 500), (0, 500), Verdict.PASS, "no significant increase"),
        # better than legacy
        ((0, 1000), (20, 1000), Verdict.PASS, "no significant increase"),
        # significant (40k requests each) but only 0.5 pp: within tolerance
        ((280, 40_000), (80, 40_000), Verdict.PASS, "but within tolerance 1 pp"),
        # 3 errors in 200 vs 1 in 1800: 1.4 pp observed, not significant at 0.001 -- hold
        ((3, 200), (1, 1800), Verdict.INCONCLUSIVE, "not significant yet"),
    ],
)
def test_error_rate_table(new, base, verdict, words) -> None:
    judgement = error_rate(*new, *base, tolerance_pp=1.0, alpha=0.001, min_samples=200)
    assert judgement.verdict is verdict, judgement.reason
    assert words in judgement.reason
    assert judgement.metric == "error_rate"


def test_error_rate_reason_names_test_and_tolerance() -> None:
    judgement = error_rate(51, 1000, 2, 1000)
    assert judgement.reason.endswith("(two-proportion z-test), beyond tolerance 1 pp")
    assert judgement.figures["test"] == "two-proportion z-test"
    assert judgement.figures["difference_pp"] == pytest.approx(4.9)
    assert judgement.figures["p_value"] < 1e-6


def test_error_rate_small_counts_use_the_exact_test() -> None:
    judgement = error_rate(8, 200, 1, 800, alpha=0.01)
    assert judgement.figures["test"] == "Fisher's exact test"
    assert judgement.verdict is Verdict.FAIL


@pytest.mark.parametrize(
    ("new", "base", "z_sign", "verdict"),
    [
        # the new path fails more often: z > 0 and a small one-sided p-value -- a FAIL
        ((60, 1000), (10, 1000), 1, Verdict.FAIL),
        # the new path fails less often by as much: z < 0, p near 1 -- never a FAIL
        ((10, 1000), (60, 1000), -1, Verdict.PASS),
    ],
)
def test_error_rate_tests_the_new_path_being_worse(new, base, z_sign, verdict) -> None:
    judgement = error_rate(*new, *base)
    z, p = judgement.figures["z"], judgement.figures["p_value"]
    assert isinstance(z, float) and isinstance(p, float)
    assert math.copysign(1, z) == z_sign
    assert (p < 1e-6) if z_sign > 0 else (p > 0.999)
    assert judgement.verdict is verdict, judgement.reason


@pytest.mark.parametrize("counts", [(-1, 10, 0, 10), (11, 10, 0, 10), (0, 10, 5, 4)])
def test_error_rate_rejects_impossible_counts(counts) -> None:
    with pytest.raises(ValueError, match="not a valid count"):
        error_rate(*counts)


# --------------------------------------------------------------------------- statistics


def test_two_proportion_z_by_hand() -> None:
    # pooled p = 70/2000 = 0.035; se = sqrt(0.035*0.965*(2/1000)) = 0.0082189; z = 0.03/se
    test = two_proportion_z(50, 1000, 20, 1000, alternative="greater")
    assert test.pooled == pytest.approx(0.035)
    assert test.z == pytest.approx(0.03 / math.sqrt(0.035 * 0.965 * 0.002))
    assert test.p_value == pytest.approx(0.00013105, rel=1e-4)


@pytest.mark.parametrize(
    ("first", "second", "z_sign", "p_greater"),
    [
        ((50, 1000), (20, 1000), 1, 0.00013105),  # the first proportion is higher
        ((20, 1000), (50, 1000), -1, 1 - 0.00013105),  # the first proportion is lower
    ],
)
def test_two_proportion_z_direction(first, second, z_sign, p_greater) -> None:
    greater = two_proportion_z(*first, *second, alternative="greater")
    assert math.copysign(1, greater.z) == z_sign
    assert greater.p_value == pytest.approx(p_greater, rel=1e-4)
    # two-sided: the same p-value whichever side is higher
    both = two_proportion_z(*first, *second, alternative="two-sided")
    assert both.z == greater.z
    assert both.p_value == pytest.approx(2 * 0.00013105, rel=1e-4)


def test_two_proportion_without_variance_is_no_evidence() -> None:
    for alternative in ("greater", "two-sided"):
        assert two_proportion_z(0, 100, 0, 100, alternative=alternative).p_value == 1.0
        assert two_proportion_z(100, 100, 50, 50, alternative=alternative).p_value == 1.0


def test_proportion_test_greater_is_one_sided() -> None:
    higher, test = proportion_test_greater(50, 1000, 20, 1000)
    lower, _ = proportion_test_greater(20, 1000, 50, 1000)
    assert test == "two-proportion z-test"
    assert higher < 0.001 < 0.999 < lower
    exact_higher, exact = proportion_test_greater(8, 200, 1, 800)
    exact_lower, _ = proportion_test_greater(1, 800, 8, 200)
    assert exact == "Fisher's exact test"
    assert exact_higher < 0.001 and exact_lower > 0.9


def test_wilson_by_hand() -> None:
    # 17 of 100 at z = 1.6449: the textbook bounds 0.1171 .. 0.2403
    lower, upper = wilson_interval(17, 100, z=z_for(0.95))
    assert lower == pytest.approx(0.11711, abs=1e-5)
    assert upper == pytest.approx(0.24028, abs=1e-5)
    # each bound at 95% one-sided is the 90% two-sided interval
    assert wilson_interval(17, 100, z=z_two_sided(0.90)) == pytest.approx((lower, upper))
    assert wilson_interval(0, 0, z=1.96) == (0.0, 1.0)
    assert wilson_interval(0, 50, z=1.96)[0] == 0.0


def test_newcombe_contains_the_difference() -> None:
    lower, upper = newcombe_difference(10, 200, 2, 200, z_for(0.975))
    assert lower < 0.04 < upper
    assert lower > 0  # 5% vs 1% over 200 each is a real difference at 97.5%


def test_mann_whitney_by_hand() -> None:
    # first = [3, 4], second = [1, 2]: ranks 3 and 4, R1 = 7, U1 = 7 - 3 = 4 (= n1 n2)
    test = mann_whitney(group([3.0, 4.0]), group([1.0, 2.0]), "greater")
    assert test.u == 4.0
    # all tied: no evidence
    tied = mann_whitney(group([1.0] * 5), group([1.0] * 5), "two-sided")
    assert tied.p_value == 1.0


def test_quantile_and_hodges_lehmann_by_hand() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.99) == pytest.approx(3.97)
    assert math.isnan(quantile([], 0.5))
    # differences of [10, 11] - [1, 2]: 9, 8, 10, 9 -> median 9
    assert hodges_lehmann(group([10.0, 11.0]), group([1.0, 2.0])) == 9.0
    assert hodges_lehmann(group(range(1000)), group(range(1000)), max_pairs=10) is None


def test_histogram_quantile_matches_prometheus() -> None:
    # 100 observations: 50 <= 0.1, 90 <= 0.5, 100 <= 1; median = 0.1 exactly; p90 = 0.5
    h = Histogram.from_cumulative({0.1: 50, 0.5: 90, 1.0: 100, math.inf: 100})
    assert h.quantile(0.5) == pytest.approx(0.1)
    assert h.quantile(0.7) == pytest.approx(0.1 + 0.4 * (20 / 40))
    assert h.quantile(0.99) == pytest.approx(0.5 + 0.5 * 0.9)
    # rank in the +Inf bucket: the highest finite bound
    assert Histogram.from_cumulative({0.1: 1, math.inf: 10}).quantile(0.9) == 0.1
    assert math.isnan(Histogram.from_cumulative({math.inf: 0}).quantile(0.5))
    with pytest.raises(ValueError, match=r"\+Inf"):
        Histogram.from_cumulative({0.1: 1})


def test_histogram_arithmetic() -> None:
    before = Histogram.from_cumulative({0.1: 5, math.inf: 10})
    after = Histogram.from_cumulative({0.1: 8, math.inf: 20})
    assert after.minus(before).buckets == ((0.1, 3.0), (math.inf, 10.0))
    assert before.minus(after) == before  # a reset: everything is new
    assert before.plus(after).buckets == ((0.1, 13.0), (math.inf, 30.0))
    assert after.minus(before).grouped() == ((0.1, 3), (math.inf, 7))


# --------------------------------------------------------------------------- SciPy cross-checks

scipy_stats = pytest.importorskip("scipy.stats", reason="scipy cross-checks need scipy")


@pytest.mark.parametrize("seed", range(8))
def test_z_test_matches_scipy(seed: int) -> None:
    rng = random.Random(seed)
    n1, n2 = rng.randint(100, 5000), rng.randint(100, 5000)
    x1, x2 = rng.randint(5, n1 // 4), rng.randint(5, n2 // 4)
    ours = two_proportion_z(x1, n1, x2, n2, alternative="greater")
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    chi2 = scipy_stats.chi2_contingency(table, correction=False)
    assert ours.z**2 == pytest.approx(chi2.statistic, rel=1e-9)
    one_sided = chi2.pvalue / 2 if ours.z > 0 else 1 - chi2.pvalue / 2
    assert ours.p_value == pytest.approx(one_sided, rel=1e-6, abs=1e-12)
    assert ours.p_value == pytest.approx(scipy_stats.norm.sf(ours.z), rel=1e-9, abs=1e-15)
    both = two_proportion_z(x1, n1, x2, n2, alternative="two-sided")
    assert both.p_value == pytest.approx(chi2.pvalue, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize(
    "counts",
    [(3, 200, 4, 1800), (5, 5, 0, 5), (10, 1000, 30, 9000), (0, 300, 2, 2700), (9, 40, 1, 60)],
)
def test_fisher_matches_scipy(counts) -> None:
    x1, n1, x2, n2 = counts
    expected = scipy_stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="greater")
    assert fisher_greater(*counts) == pytest.approx(expected.pvalue, rel=1e-9)
    p, _ = proportion_test_greater(*counts)
    assert 0.0 <= p <= 1.0


@pytest.mark.parametrize("alternative", ["greater", "two-sided"])
@pytest.mark.parametrize("seed", range(6))
def test_mann_whitney_matches_scipy_on_raw_samples(seed: int, alternative: str) -> None:
    rng = random.Random(seed)
    first = [rng.lognormvariate(-5.0, 0.5) for _ in range(rng.randint(20, 400))]
    second = [rng.lognormvariate(-4.9 + seed * 0.02, 0.5) for _ in range(rng.randint(20, 400))]
    ours = mann_whitney(group(first), group(second), alternative)  # type: ignore[arg-type]
    theirs = scipy_stats.mannwhitneyu(first, second, alternative=alternative, method="asymptotic")
    assert ours.u == pytest.approx(theirs.statistic)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-14)


@pytest.mark.parametrize("seed", range(6))
def test_mann_whitney_matches_scipy_on_histograms(seed: int) -> None:
    """Histogram buckets are tie groups: the same as SciPy on the bucketed values."""
    rng = random.Random(seed)
    first = Histogram.from_samples([rng.lognormvariate(-4.6, 0.8) for _ in range(300)], BUCKETS)
    second = Histogram.from_samples(
        [rng.lognormvariate(-4.6 + 0.1 * seed, 0.8) for _ in range(250)], BUCKETS
    )
    expand = lambda h: [v if math.isfinite(v) else 1e9 for v, c in h.grouped() for _ in range(c)]  # noqa: E731
    ours = mann_whitney(first.grouped(), second.grouped(), "greater")
    theirs = scipy_stats.mannwhitneyu(
        expand(first), expand(second), alternative="greater", method="asymptotic"
    )
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-9, abs=1e-14)


def test_wilson_matches_scipy() -> None:
    for k, n in ((0, 50), (17, 100), (99, 100), (400, 1000)):
        ours = wilson_interval(k, n, z=z_for(0.95))
        theirs = scipy_stats.binomtest(k, n).proportion_ci(0.90, method="wilson")
        assert ours == pytest.approx((theirs.low, theirs.high), abs=1e-12)


# --------------------------------------------------------------------------- latency


def _lognormal(seed: int, n: int, median_s: float, shift_s: float = 0.0) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(math.log(median_s), 0.5) + shift_s for _ in range(n)]


def test_latency_fails_on_200ms_slower() -> None:
    judgement = latency(_lognormal(1, 200, 0.005, 0.2), _lognormal(2, 200, 0.005))
    assert judgement.verdict is Verdict.FAIL
    assert "slower with p<0.0001 (Mann-Whitney U), beyond tolerance x1.25" in judgement.reason
    assert judgement.figures["p99_ratio"] > 10
    assert judgement.figures["hodges_lehmann_shift_s"] == pytest.approx(0.2, abs=0.005)


def test_latency_tables() -> None:
    fast, slow = _lognormal(3, 300, 0.005), _lognormal(4, 300, 0.020)
    assert latency(fast, slow).verdict is Verdict.PASS  # faster than legacy
    assert latency(fast[:20], slow).verdict is Verdict.INCONCLUSIVE  # too few
    # significantly slower by 5% only: within tolerance
    same_but_a_bit = [x * 1.05 for x in fast]
    judgement = latency(same_but_a_bit, _lognormal(3, 300, 0.005), min_samples=50)
    assert judgement.verdict is Verdict.PASS
    # x2 slower but only 1 ms in absolute terms: min_shift_s keeps it a pass
    tiny = latency(_lognormal(5, 300, 0.001), _lognormal(6, 300, 0.0005), min_shift_s=0.01)
    assert tiny.verdict is Verdict.PASS
    assert "within tolerance x1.25 and +10.0 ms" in tiny.reason


def test_latency_on_histograms() -> None:
    new = Histogram.from_samples(_lognormal(7, 400, 0.005, 0.2), BUCKETS)
    base = Histogram.from_samples(_lognormal(8, 400, 0.005), BUCKETS)
    assert latency(new, base).verdict is Verdict.FAIL
    assert latency(base, base).verdict is Verdict.PASS
    with pytest.raises(ValueError, match="raw samples with raw samples"):
        latency(new, [0.1] * 100)
    with pytest.raises(ValueError, match="bucket bounds"):
        latency(new, Histogram.from_samples([0.1] * 100, (0.5,)))


# --------------------------------------------------------------------------- mismatch, threshold


@pytest.mark.parametrize(
    ("mismatches", "total", "verdict"),
    [
        (5, 50, Verdict.INCONCLUSIVE),  # too few comparisons
        (102, 600, Verdict.FAIL),  # 17%, lower bound 14.6% > 5%
        (3, 600, Verdict.PASS),  # 0.5%, upper bound 1.2% < 5%
        (28, 600, Verdict.INCONCLUSIVE),  # 4.7%: interval straddles 5%
        (0, 100, Verdict.PASS),  # upper bound 2.6%
    ],
)
def test_mismatch_table(mismatches: int, total: int, verdict: Verdict) -> None:
    judgement = mismatch_rate(mismatches, total, tolerance=0.05, alpha=0.05, min_samples=100)
    assert judgement.verdict is verdict, judgement.reason
    if verdict is Verdict.FAIL:
        assert "decision mismatch 17.0% of 600 shadow comparisons" in judgement.reason
        assert "above tolerance 5.0%" in judgement.reason


@pytest.mark.parametrize(
    ("value", "kwargs", "verdict", "words"),
    [
        (0.07, {"max_value": 0.05, "unit": "%"}, Verdict.FAIL, "7.0% above the maximum 5.0%"),
        (0.01, {"max_value": 0.05, "unit": "%"}, Verdict.PASS, "within bounds (<= 5.0%)"),
        (3.0, {"min_value": 5.0, "unit": "s"}, Verdict.FAIL, "below the minimum 5 s"),
        (None, {"max_value": 1.0}, Verdict.INCONCLUSIVE, "no value"),
        (float("nan"), {"max_value": 1.0}, Verdict.INCONCLUSIVE, "no value"),
        (0.5, {"max_value": 1.0, "samples": 3, "min_samples": 10}, Verdict.INCONCLUSIVE, "only 3"),
    ],
)
def test_threshold_table(value, kwargs, verdict, words) -> None:
    judgement = threshold(value, metric="bureau_failures", **kwargs)
    assert judgement.verdict is verdict
    assert words in judgement.reason


def test_ratio_threshold() -> None:
    judgement = ratio_threshold(21, 300, max_ratio=0.05, metric="bureau_failures")
    assert judgement.verdict is Verdict.FAIL
    assert judgement.reason == "bureau failures 7.0% of 300 above the maximum 5.0%"
    assert judgement.figures["failures"] == 21
    assert ratio_threshold(0, 0, max_ratio=0.05).verdict is Verdict.INCONCLUSIVE

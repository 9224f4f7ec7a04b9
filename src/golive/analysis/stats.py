"""The statistics the judges use, in plain Python (``math`` and ``statistics`` only).

Everything here is a pure function of counts or samples. p-values use the normal
approximation; the tests cross-check them against SciPy.

Samples are handled *grouped*: a sorted tuple of ``(value, count)`` pairs. Raw latencies
group trivially (almost every value distinct); a latency histogram groups into its buckets,
each bucket one tie group at its upper bound. A rank test on the grouped data is the
Mann-Whitney U test with ties, so the same code judges raw samples and Prometheus histograms.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

Grouped = tuple[tuple[float, int], ...]
Alternative = Literal["greater", "two-sided"]

_STANDARD_NORMAL = NormalDist()


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z; accurate far into the upper tail."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def z_for(confidence: float) -> float:
    """The one-sided critical value: P(Z <= z) = ``confidence``."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    return _STANDARD_NORMAL.inv_cdf(confidence)


@dataclass(frozen=True, slots=True)
class ProportionTest:
    z: float
    p_value: float  # one-sided: the first proportion is greater than the second
    pooled: float


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> ProportionTest:
    """Pooled two-proportion z-test, one-sided H1: x1/n1 > x2/n2.

    With no variance at all (no events, or only events, on both sides) there is no
    evidence of a difference: z = 0, p = 0.5 would be wrong, so p = 1.
    """
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both samples need at least one observation")
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if variance <= 0.0:
        return ProportionTest(z=0.0, p_value=1.0, pooled=pooled)
    z = (x1 / n1 - x2 / n2) / math.sqrt(variance)
    return ProportionTest(z=z, p_value=normal_sf(z), pooled=pooled)


def fisher_greater(x1: int, n1: int, x2: int, n2: int) -> float:
    """One-sided Fisher exact test, H1: x1/n1 > x2/n2 -- P(X >= x1) for the hypergeometric X
    of events falling in the first sample given the margins."""
    events, total = x1 + x2, n1 + n2

    def log_comb(n: int, k: int) -> float:
        return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)

    log_all = log_comb(total, n1)
    terms = [
        log_comb(events, k) + log_comb(total - events, n1 - k) - log_all
        for k in range(x1, min(events, n1) + 1)
        if n1 - k <= total - events
    ]
    if not terms:
        return 0.0
    peak = max(terms)
    return min(1.0, math.exp(peak) * sum(math.exp(t - peak) for t in terms))


def proportion_test(x1: int, n1: int, x2: int, n2: int) -> tuple[float, str]:
    """One-sided p-value that x1/n1 > x2/n2, and the test used.

    The pooled z-test when every expected cell count is at least 5; otherwise Fisher's exact
    test -- with rare events (errors of 0.2%) the normal approximation is anti-conservative and
    would raise false alarms on a handful of errors.
    """
    events, total = x1 + x2, n1 + n2
    expected = (
        n1 * events / total,
        n2 * events / total,
        n1 * (total - events) / total,
        n2 * (total - events) / total,
    )
    if min(expected) >= 5.0:
        return two_proportion_z(x1, n1, x2, n2).p_value, "two-proportion z-test"
    return fisher_greater(x1, n1, x2, n2), "Fisher's exact test"


def wilson_interval(successes: int, total: int, z: float) -> tuple[float, float]:
    """Wilson score interval for a proportion; ``z`` sets the level of each bound."""
    if total <= 0:
        return (0.0, 1.0)
    p = successes / total
    z2 = z * z
    denominator = 1.0 + z2 / total
    centre = (p + z2 / (2.0 * total)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / total + z2 / (4.0 * total * total)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe_difference(x1: int, n1: int, x2: int, n2: int, z: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval for x1/n1 - x2/n2 (well behaved at zero counts)."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    difference = p1 - p2
    lower = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (lower, upper)


def group(values: Iterable[float]) -> Grouped:
    """Raw samples as sorted (value, count) pairs; NaN is dropped (as Kayenta does)."""
    counts = Counter(v for v in values if not math.isnan(v))
    return tuple(sorted(counts.items()))


def grouped_size(data: Grouped) -> int:
    return sum(count for _, count in data)


@dataclass(frozen=True, slots=True)
class RankTest:
    u: float  # U of the first sample
    z: float
    p_value: float
    ties: bool


def mann_whitney(first: Grouped, second: Grouped, alternative: Alternative) -> RankTest:
    """Mann-Whitney U with tie correction and continuity correction (normal approximation).

    ``alternative="greater"`` tests whether ``first`` tends to be larger than ``second``.
    Matches ``scipy.stats.mannwhitneyu(first, second, method="asymptotic")``.
    """
    n1, n2 = grouped_size(first), grouped_size(second)
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need at least one observation")
    a = dict(first)
    b = dict(second)
    total = n1 + n2
    below = 0
    rank_sum_first = 0.0
    tie_term = 0.0
    for value in sorted(set(a) | set(b)):
        in_first, in_second = a.get(value, 0), b.get(value, 0)
        tied = in_first + in_second
        midrank = below + (tied + 1) / 2.0
        rank_sum_first += in_first * midrank
        tie_term += tied**3 - tied
        below += tied
    u = rank_sum_first - n1 * (n1 + 1) / 2.0
    mean = n1 * n2 / 2.0
    variance = n1 * n2 / 12.0 * ((total + 1) - tie_term / (total * (total - 1)))
    if variance <= 0.0:  # every observation tied: no evidence either way
        return RankTest(u=u, z=0.0, p_value=1.0, ties=True)
    sd = math.sqrt(variance)
    if alternative == "greater":
        z = (u - mean - 0.5) / sd
        p = normal_sf(z)
    else:
        z = (abs(u - mean) - 0.5) / sd
        p = min(1.0, 2.0 * normal_sf(z))
    return RankTest(u=u, z=z, p_value=p, ties=tie_term > 0)


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile of sorted raw samples (NumPy's default method)."""
    if not sorted_values:
        return math.nan
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    share = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * share


def hodges_lehmann(first: Grouped, second: Grouped, max_pairs: int = 250_000) -> float | None:
    """Median of all pairwise differences first - second; None when there are too many pairs."""
    pairs = len(first) * len(second)
    if pairs == 0 or pairs > max_pairs:
        return None
    differences = sorted(
        (x - y, cx * cy) for x, cx in first for y, cy in second if math.isfinite(x - y)
    )
    weight = sum(w for _, w in differences)
    if weight == 0:
        return None
    half = weight / 2.0
    seen = 0
    for index, (difference, w) in enumerate(differences):
        seen += w
        if seen > half:
            return difference
        if seen == half:  # an even split: average with the next difference
            following = differences[index + 1][0] if index + 1 < len(differences) else difference
            return (difference + following) / 2.0
    return differences[-1][0]

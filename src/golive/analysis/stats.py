"""The statistics of golive, in plain Python (``math`` and ``statistics`` only).

One module for the traffic stages' judges and for the legacy-vs-new validation
(``golive.validation`` imports it). Everything here is a pure function of counts or samples.
p-values use the normal approximation; the tests cross-check them against SciPy.

Every test names its direction: ``alternative="greater"`` is H1 "the first sample's
proportion (or values) is greater than the second's", ``"two-sided"`` is H1 "they differ";
``fisher_greater`` and ``proportion_test_greater`` are one-sided by name. Critical values:
``z_for(c)`` is one-sided (P(Z <= z) = c), ``z_two_sided(c)`` two-sided (P(|Z| <= z) = c).

Samples are handled *grouped*: a sorted tuple of ``(value, count)`` pairs. Raw latencies
group trivially (almost every value distinct); a latency histogram groups into its buckets,
each bucket one tie group at its upper bound. A rank test on the grouped data is the
Mann-Whitney U test with ties, so the same code judges raw samples and Prometheus histograms.

The validation's own measures sit here too: ``paired_difference`` (two proportions on the same
items), ``decile_edges`` / ``bin_counts`` / ``psi`` (population stability), ``spearman``.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

Grouped = tuple[tuple[float, int], ...]
Alternative = Literal["greater", "two-sided"]

_STANDARD_NORMAL = NormalDist()

# A bin with no observations on one side would make PSI infinite; like most credit-risk tools,
# empty bins are floored at this share (documented in docs/validation.md).
PSI_EMPTY_SHARE = 1e-4


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z; accurate far into the upper tail."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def z_for(confidence: float) -> float:
    """The one-sided critical value: P(Z <= z) = ``confidence``."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    return _STANDARD_NORMAL.inv_cdf(confidence)


def z_two_sided(confidence: float) -> float:
    """The two-sided critical value: P(|Z| <= z) = ``confidence`` (1.959964 for 0.95)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    return _STANDARD_NORMAL.inv_cdf(1.0 - (1.0 - confidence) / 2.0)


@dataclass(frozen=True, slots=True)
class ProportionTest:
    z: float  # (x1/n1 - x2/n2) / se: positive when the first proportion is the greater
    p_value: float  # under the test's ``alternative``
    pooled: float


def two_proportion_z(
    x1: int, n1: int, x2: int, n2: int, *, alternative: Alternative
) -> ProportionTest:
    """Pooled two-proportion z-test of x1/n1 against x2/n2.

    ``alternative="greater"``: H1 x1/n1 > x2/n2, p = P(Z > z); ``"two-sided"``: H1 they
    differ, p = 2 P(Z > |z|). With no variance at all (no events, or only events, on both
    sides) there is no evidence of a difference: z = 0, and p = 1 (0.5 would be wrong).
    """
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both samples need at least one observation")
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if variance <= 0.0:
        return ProportionTest(z=0.0, p_value=1.0, pooled=pooled)
    z = (x1 / n1 - x2 / n2) / math.sqrt(variance)
    if alternative == "greater":
        return ProportionTest(z=z, p_value=normal_sf(z), pooled=pooled)
    return ProportionTest(z=z, p_value=min(1.0, 2.0 * normal_sf(abs(z))), pooled=pooled)


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


def proportion_test_greater(x1: int, n1: int, x2: int, n2: int) -> tuple[float, str]:
    """One-sided p-value of H1 x1/n1 > x2/n2, and the test used.

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
        test = two_proportion_z(x1, n1, x2, n2, alternative="greater")
        return test.p_value, "two-proportion z-test"
    return fisher_greater(x1, n1, x2, n2), "Fisher's exact test"


def wilson_interval(successes: int, total: int, *, z: float) -> tuple[float, float]:
    """Wilson score interval of ``successes / total``; (0, 1) when there is no data.

    ``z`` sets the level: ``z_for(1 - alpha)`` puts each bound at 1 - alpha (one-sided),
    ``z_two_sided(c)`` makes the interval a two-sided ``c`` one.
    """
    if total < 0 or not 0 <= successes <= max(total, 0):
        raise ValueError(f"invalid counts {successes}/{total}")
    if total == 0:
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
    l1, u1 = wilson_interval(x1, n1, z=z)
    l2, u2 = wilson_interval(x2, n2, z=z)
    difference = p1 - p2
    lower = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (lower, upper)


@dataclass(frozen=True, slots=True)
class Difference:
    value: float
    lower: float
    upper: float


def paired_difference(gained: int, lost: int, total: int, confidence: float = 0.95) -> Difference:
    """Rate(new) − rate(legacy) over the same ``total`` items, with its Wald interval.

    ``gained``: items positive on the new side only; ``lost``: positive on the legacy side only
    (the discordant cells of McNemar's table). Var = ((b + c) − (b − c)² / n) / n².
    """
    if total <= 0:
        return Difference(0.0, -1.0, 1.0)
    diff = (gained - lost) / total
    variance = max(0.0, (gained + lost) - (gained - lost) ** 2 / total) / total**2
    half = z_two_sided(confidence) * math.sqrt(variance)
    return Difference(diff, max(-1.0, diff - half), min(1.0, diff + half))


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


def decile_edges(values: Sequence[float], bins: int = 10) -> list[float]:
    """Upper-inclusive cut points at the 1/bins … (bins-1)/bins quantiles (nearest rank),
    without duplicates: integer scores with many ties give fewer, wider bins."""
    if not values:
        return []
    ordered = sorted(values)
    n = len(ordered)
    edges: list[float] = []
    for k in range(1, bins):
        cut = ordered[max(0, math.ceil(k * n / bins) - 1)]
        if not edges or cut > edges[-1]:
            edges.append(cut)
    if edges and edges[-1] >= ordered[-1]:
        edges.pop()  # a last edge at the maximum would leave the top bin empty by construction
    return edges


def bin_counts(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    """Counts per bin (-inf, e1], (e1, e2], …, (e_k, inf)."""
    counts = [0] * (len(edges) + 1)
    for value in values:
        counts[bisect_left(edges, value)] += 1
    return counts


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index Σ (a − e) · ln(a / e) over bins, from counts or shares."""
    if len(expected) != len(actual) or not expected:
        raise ValueError("PSI needs the same, non-zero number of bins on both sides")
    e_total, a_total = float(sum(expected)), float(sum(actual))
    if e_total <= 0 or a_total <= 0:
        raise ValueError("PSI needs observations on both sides")
    index = 0.0
    for e_count, a_count in zip(expected, actual, strict=True):
        e = max(e_count / e_total, PSI_EMPTY_SHARE)
        a = max(a_count / a_total, PSI_EMPTY_SHARE)
        index += (a - e) * math.log(a / e)
    return index


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        average = (i + j) / 2.0 + 1.0
        for k in range(i, j + 1):
            ranks[order[k]] = average
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (Pearson on average ranks); None without variation."""
    if len(x) != len(y):
        raise ValueError("spearman needs two sequences of the same length")
    n = len(x)
    if n < 2:
        return None
    rx, ry = _ranks(x), _ranks(y)
    mean = (n + 1) / 2.0
    sxy = sum((a - mean) * (b - mean) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mean) ** 2 for a in rx)
    syy = sum((b - mean) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)

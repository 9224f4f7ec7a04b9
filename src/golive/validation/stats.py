"""The statistics of the comparison, in plain Python (``math`` and ``statistics`` only).

Every function is pure and works on counts or plain sequences:

- ``wilson_interval``: the Wilson score interval of a proportion (two-sided);
- ``paired_difference``: the difference of two proportions measured on the *same* items
  (approval rate new − legacy over the same applications), with its Wald interval;
- ``two_proportion_z``: the pooled two-proportion z-test, one-sided (later window worse);
- ``decile_edges`` / ``bin_counts`` / ``psi``: the population stability index;
- ``spearman``: rank correlation with average ranks for ties.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()

# A bin with no observations on one side would make PSI infinite; like most credit-risk tools,
# empty bins are floored at this share (documented in docs/validation.md).
PSI_EMPTY_SHARE = 1e-4


def z_two_sided(confidence: float) -> float:
    """The critical value z with P(|Z| <= z) = ``confidence`` (1.959964 for 0.95)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), not {confidence}")
    return _NORMAL.inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def wilson_interval(successes: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / total``; (0, 1) when there is no data."""
    if total < 0 or not 0 <= successes <= max(total, 0):
        raise ValueError(f"invalid counts {successes}/{total}")
    if total == 0:
        return 0.0, 1.0
    z = z_two_sided(confidence)
    p = successes / total
    z2n = z * z / total
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z * math.sqrt(p * (1.0 - p) / total + z2n / (4.0 * total)) / (1.0 + z2n)
    return max(0.0, centre - half), min(1.0, centre + half)


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


@dataclass(frozen=True, slots=True)
class ProportionTest:
    z: float
    p_value: float  # one-sided: the second proportion is greater than the first


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> ProportionTest:
    """Pooled two-proportion z-test, one-sided H1: x2/n2 > x1/n1 (the later window is worse)."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both samples need at least one observation")
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if variance <= 0.0:
        return ProportionTest(0.0, 1.0)
    z = (x2 / n2 - x1 / n1) / math.sqrt(variance)
    return ProportionTest(z, 0.5 * math.erfc(z / math.sqrt(2.0)))


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

"""Bands for loan amounts and terms: segment labels, and how amounts appear in any output."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence


def _money(value: float) -> str:
    if value >= 1_000_000 and value % 1_000_000 == 0:
        return f"{value / 1_000_000:g}m"
    if value >= 1_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"


def amount_band(amount: float, edges: Sequence[float]) -> str:
    """The upper-inclusive band of an amount, e.g. "25k–50k ZMW" for 30,000."""
    i = bisect_left(edges, amount)
    if not edges:
        return "all amounts"
    if i == 0:
        return f"≤{_money(edges[0])} ZMW"
    if i == len(edges):
        return f">{_money(edges[-1])} ZMW"
    return f"{_money(edges[i - 1])}–{_money(edges[i])} ZMW"


def term_band(term: int, edges: Sequence[int]) -> str:
    """The band of a term in months, e.g. "25–36 m" for 30."""
    i = bisect_left(edges, term)
    if not edges:
        return "all terms"
    if i == 0:
        return f"≤{edges[0]} m"
    if i == len(edges):
        return f">{edges[-1]} m"
    return f"{edges[i - 1] + 1}–{edges[i]} m"

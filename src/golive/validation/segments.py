"""Mismatch and approval rates by segment, each with its Wilson interval.

Dimensions: loan-amount band, term band, legacy grade, new grade, and new vs existing client.
A segment is flagged only when it has at least ``min_count`` pairs AND the lower bound of its
*unexplained* mismatch rate (differences no live allowlist entry excuses) is above the
tolerance: a segment is flagged on evidence, never on the noise of a handful of pairs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from golive.validation.bands import amount_band, term_band
from golive.validation.compare import Rate, is_approval, rate
from golive.validation.config import ValidationConfig
from golive.validation.records import Pair

DIMENSIONS = ("loan_amount", "loan_term", "legacy_grade", "new_grade", "client")


@dataclass
class _Counts:
    total: int = 0
    mismatched: int = 0
    unexplained: int = 0
    legacy_approved: int = 0
    new_approved: int = 0


@dataclass(frozen=True, slots=True)
class SegmentRates:
    dimension: str
    label: str
    total: int
    mismatched: int  # every difference, explained or not
    unexplained: Rate  # differences no live allowlist entry excuses
    legacy_approval: Rate
    new_approval: Rate
    flagged: bool
    note: str


class SegmentTally:
    def __init__(self, config: ValidationConfig) -> None:
        self._config = config
        self._counts: dict[tuple[str, str], _Counts] = defaultdict(_Counts)
        self._order: dict[str, list[str]] = {d: [] for d in DIMENSIONS}

    def labels(self, pair: Pair) -> tuple[tuple[str, str], ...]:
        seg = self._config.segments
        app = pair.application
        return (
            ("loan_amount", amount_band(app.loan_amount, seg.loan_amount_edges)),
            ("loan_term", term_band(app.loan_term, seg.loan_term_edges)),
            ("legacy_grade", pair.legacy.grade or "?"),
            ("new_grade", pair.new.grade or "?"),
            ("client", "existing" if app.existing_client else "new"),
        )

    def add(self, pair: Pair, mismatched: bool, unexplained: bool) -> None:
        rules = self._config.match
        legacy_yes = is_approval(pair.legacy, rules)
        new_yes = is_approval(pair.new, rules)
        for key in self.labels(pair):
            counts = self._counts[key]
            if counts.total == 0:
                self._order[key[0]].append(key[1])
            counts.total += 1
            counts.mismatched += mismatched
            counts.unexplained += unexplained
            counts.legacy_approved += legacy_yes
            counts.new_approved += new_yes

    def results(self) -> list[SegmentRates]:
        seg = self._config.segments
        out = []
        for dimension in DIMENSIONS:
            for label in _sorted_labels(dimension, self._order[dimension], self._config):
                c = self._counts[(dimension, label)]
                unexplained = rate(c.unexplained, c.total, seg.confidence)
                enough = c.total >= seg.min_count
                flagged = enough and unexplained.lower > seg.mismatch_tolerance
                if not enough:
                    note = f"fewer than {seg.min_count} pairs: not judged"
                elif flagged:
                    note = (
                        f"lower bound {unexplained.lower:.1%} above tolerance "
                        f"{seg.mismatch_tolerance:.1%}"
                    )
                else:
                    note = "within tolerance"
                out.append(
                    SegmentRates(
                        dimension,
                        label,
                        c.total,
                        c.mismatched,
                        unexplained,
                        rate(c.legacy_approved, c.total, seg.confidence),
                        rate(c.new_approved, c.total, seg.confidence),
                        flagged,
                        note,
                    )
                )
        return out


def _sorted_labels(dimension: str, labels: list[str], config: ValidationConfig) -> list[str]:
    seg = config.segments
    if dimension == "loan_amount":
        edges = seg.loan_amount_edges
        order = [amount_band(e, edges) for e in edges] + [amount_band(edges[-1] + 1, edges)]
    elif dimension == "loan_term":
        terms = seg.loan_term_edges
        order = [term_band(e, terms) for e in terms] + [term_band(terms[-1] + 1, terms)]
    elif dimension == "client":
        order = ["new", "existing"]
    else:
        order = ["A", "B", "C", "D", "E", "?"]
    rank = {label: i for i, label in enumerate(order)}
    return sorted(labels, key=lambda label: (rank.get(label, len(rank)), label))

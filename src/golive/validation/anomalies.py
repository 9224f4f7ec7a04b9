"""Anomalies: score-distribution stability, approval-rate shift, sudden changes over time.

- PSI legacy vs new. Scores on one scale (a legacy export against an earlier new-engine run):
  PSI over the legacy side's score deciles. Scores on different scales (legacy 300-850 against
  the new scorecard): binning one side's scores by the other's deciles means nothing, so the
  grade distribution (A-E on both sides) is compared instead, and the rank correlation is
  reported with the scores.
- PSI new vs training: the new scores over the training distribution's bands (the model card).
- Approval-rate shift: flagged when the whole interval of (new − legacy) lies beyond ± the
  tolerance.
- Windows: the unexplained mismatch rate of each time window against the previous one; flagged
  when it rose by at least ``window_min_increase`` and the one-sided two-proportion z-test is
  significant at ``window_alpha`` divided by the number of window pairs (Bonferroni).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from golive.analysis.stats import bin_counts, decile_edges, psi, two_proportion_z
from golive.validation.compare import ApprovalRates
from golive.validation.config import GRADES, Anomalies
from golive.validation.records import Pair

OK, WARN, ALERT, SKIPPED = "ok", "warn", "alert", "skipped"


@dataclass(frozen=True, slots=True)
class Anomaly:
    check: str
    status: str  # ok | warn | alert | skipped; only "alert" fails the run
    value: float | None
    threshold: float | None
    detail: str
    figures: dict[str, object] = field(default_factory=dict)

    @property
    def flagged(self) -> bool:
        return self.status == ALERT


def _psi_status(value: float, limits: Anomalies) -> str:
    if value > limits.psi_alert:
        return ALERT
    return WARN if value > limits.psi_warn else OK


def psi_legacy_vs_new(pairs: Sequence[Pair], limits: Anomalies) -> Anomaly:
    scored = [p for p in pairs if p.legacy.score is not None and p.new.score is not None]
    same = [p for p in scored if p.legacy.scale == p.new.scale]
    if len(same) >= limits.min_count and len(same) == len(scored):
        legacy = [float(p.legacy.score) for p in same if p.legacy.score is not None]
        new = [float(p.new.score) for p in same if p.new.score is not None]
        edges = decile_edges(legacy)
        value = psi(bin_counts(legacy, edges), bin_counts(new, edges))
        return Anomaly(
            "psi_legacy_vs_new",
            _psi_status(value, limits),
            value,
            limits.psi_alert,
            f"score PSI {value:.4f} over the legacy side's {len(edges) + 1} score deciles",
            {"basis": "score deciles", "edges": edges, "pairs": len(same)},
        )
    graded = [p for p in pairs if p.legacy.grade is not None and p.new.grade is not None]
    if len(graded) < limits.min_count:
        return Anomaly(
            "psi_legacy_vs_new",
            SKIPPED,
            None,
            limits.psi_alert,
            f"only {len(graded)} pairs with a grade on both sides; {limits.min_count} needed",
        )
    legacy_counts = [sum(1 for p in graded if p.legacy.grade == g) for g in GRADES]
    new_counts = [sum(1 for p in graded if p.new.grade == g) for g in GRADES]
    value = psi(legacy_counts, new_counts)
    return Anomaly(
        "psi_legacy_vs_new",
        _psi_status(value, limits),
        value,
        limits.psi_alert,
        f"grade PSI {value:.4f} (the two sides score on different scales, so their grade "
        "distributions are compared)",
        {"basis": "grades", "legacy": legacy_counts, "new": new_counts, "pairs": len(graded)},
    )


def psi_new_vs_training(pairs: Sequence[Pair], limits: Anomalies) -> Anomaly:
    training = limits.training
    if training is None:
        return Anomaly(
            "psi_new_vs_training",
            SKIPPED,
            None,
            limits.psi_alert,
            "no training score distribution configured (anomalies.training)",
        )
    scores = [float(p.new.score) for p in pairs if p.new.score is not None]
    if len(scores) < limits.min_count:
        return Anomaly(
            "psi_new_vs_training",
            SKIPPED,
            None,
            limits.psi_alert,
            f"only {len(scores)} new scores; {limits.min_count} needed",
        )
    counts = bin_counts(scores, training.edges)
    value = psi(training.shares, counts)
    versions = sorted({p.new.version for p in pairs if p.new.version})
    detail = f"score PSI {value:.4f} of the new scores over the training bands"
    if training.model_version and versions and versions != [training.model_version]:
        detail += (
            f" (warning: the training bands are for {training.model_version}; the new side "
            f"reports {', '.join(versions)})"
        )
    return Anomaly(
        "psi_new_vs_training",
        _psi_status(value, limits),
        value,
        limits.psi_alert,
        detail,
        {"edges": training.edges, "training_shares": training.shares, "new_counts": counts},
    )


def approval_shift(rates: ApprovalRates, limits: Anomalies) -> Anomaly:
    shift, n = rates.shift, rates.legacy.total
    if n < limits.min_count:
        return Anomaly(
            "approval_shift",
            SKIPPED,
            None,
            limits.approval_shift_tolerance,
            f"only {n} pairs; {limits.min_count} needed",
        )
    tol = limits.approval_shift_tolerance
    beyond = shift.lower > tol or shift.upper < -tol
    detail = (
        f"approval rate {rates.legacy.value:.1%} → {rates.new.value:.1%}: shift "
        f"{shift.value:+.1%} (95% interval {shift.lower:+.1%} to {shift.upper:+.1%}), "
        f"tolerance ±{tol:.1%}"
    )
    return Anomaly(
        "approval_shift",
        ALERT if beyond else OK,
        shift.value,
        tol,
        detail,
        {"lower": shift.lower, "upper": shift.upper},
    )


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    total: int
    unexplained: int


def windows(points: Sequence[tuple[datetime, bool]], minutes: int) -> list[Window]:
    """(decided_at, unexplained) points counted per window of ``minutes``, oldest first."""
    size = timedelta(minutes=minutes)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    counts: dict[int, list[int]] = {}
    for when, bad in points:
        at = when if when.tzinfo else when.replace(tzinfo=UTC)
        slot = (at - epoch) // size
        cell = counts.setdefault(slot, [0, 0])
        cell[0] += 1
        cell[1] += bad
    return [Window(epoch + slot * size, n, x) for slot, (n, x) in sorted(counts.items())]


def window_changes(series: Sequence[Window], limits: Anomalies) -> Anomaly:
    judged = [
        (a, b)
        for a, b in itertools.pairwise(series)
        if a.total >= limits.window_min_count and b.total >= limits.window_min_count
    ]
    if not judged:
        return Anomaly(
            "window_change",
            SKIPPED,
            None,
            limits.window_min_increase,
            f"{len(series)} window(s) of {limits.window_minutes} min; no two consecutive "
            f"windows with {limits.window_min_count}+ pairs each",
        )
    alpha = limits.window_alpha / len(judged)
    flagged: list[dict[str, object]] = []
    worst = 0.0
    for a, b in judged:
        increase = b.unexplained / b.total - a.unexplained / a.total
        worst = max(worst, increase)
        # H1: the later window's unexplained mismatch rate is the greater (it rose).
        test = two_proportion_z(
            b.unexplained, b.total, a.unexplained, a.total, alternative="greater"
        )
        if increase >= limits.window_min_increase and test.p_value < alpha:
            flagged.append(
                {
                    "window": b.start.isoformat(),
                    "previous_rate": a.unexplained / a.total,
                    "rate": b.unexplained / b.total,
                    "p_value": test.p_value,
                }
            )
    detail = (
        f"{len(judged)} consecutive window pair(s) of {limits.window_minutes} min judged; "
        f"largest rise in the unexplained mismatch rate {worst:+.1%}"
    )
    if flagged:
        detail += f"; {len(flagged)} significant rise(s), first at {flagged[0]['window']}"
    return Anomaly(
        "window_change",
        ALERT if flagged else OK,
        worst,
        limits.window_min_increase,
        detail,
        {"alpha_per_pair": alpha, "flagged": flagged},
    )

"""One validation run: pairs in, a :class:`ValidationResult` out — and the gate the traffic
stages call on it. Pure: the clock (``today``), the hashing key and the replay's unanswered
rows are passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from golive.validation.allowlist import Allowlist, EntryUse
from golive.validation.anomalies import (
    Anomaly,
    approval_shift,
    psi_legacy_vs_new,
    psi_new_vs_training,
    window_changes,
    windows,
)
from golive.validation.compare import (
    ApprovalRates,
    Rate,
    ReasonComparison,
    ScoreComparison,
    agreement_matrix,
    approval_rates,
    compare_reasons,
    compare_scores,
    differences,
    field_mismatches,
    grade_migration,
    rate,
)
from golive.validation.config import ValidationConfig
from golive.validation.records import Pair
from golive.validation.register import Masker, Register, RegisterEntry, classify
from golive.validation.segments import SegmentRates, SegmentTally


@dataclass(frozen=True, slots=True)
class Unanswered:
    """An application the replay could not get a decision for, and why (masked ref)."""

    application: str
    cause: str
    attempts: int


@dataclass(frozen=True, slots=True)
class SourceInfo:
    kind: str  # shadow | replay-database | replay-export
    description: str  # where the pairs came from, without credentials
    requested: int  # applications read from the source
    retries: int = 0
    elapsed_s: float | None = None
    unanswered: tuple[Unanswered, ...] = ()


@dataclass
class ValidationResult:
    source: SourceInfo
    config: ValidationConfig
    today: date
    pairs: int
    matched: int
    expected: int  # differences excused by a live allowlist entry
    unexplained: Rate  # differences no live entry excuses, over all pairs
    field_mismatches: dict[str, int]
    agreement: dict[str, dict[str, int]]
    grades: dict[str, dict[str, int]]
    approvals: ApprovalRates
    reasons: ReasonComparison
    scores: ScoreComparison
    segments: list[SegmentRates]
    anomalies: list[Anomaly]
    register: list[RegisterEntry]
    allowlist: list[EntryUse]
    warnings: list[str] = field(default_factory=list)

    @property
    def unanswered(self) -> int:
        return len(self.source.unanswered)

    @property
    def unanswered_ratio(self) -> float:
        return self.unanswered / self.source.requested if self.source.requested else 0.0

    @property
    def flagged_segments(self) -> list[SegmentRates]:
        return [s for s in self.segments if s.flagged]

    @property
    def flagged_anomalies(self) -> list[Anomaly]:
        return [a for a in self.anomalies if a.flagged]

    def failures(self) -> list[str]:
        """Why this run fails (empty: it passes)."""
        out = []
        limit = self.config.replay.max_unanswered_ratio
        if self.unanswered_ratio > limit:
            out.append(
                f"{self.unanswered} of {self.source.requested} applications unanswered "
                f"({self.unanswered_ratio:.2%} > {limit:.2%})"
            )
        if self.pairs == 0:
            out.append("no pairs to compare")
        out += [
            f"segment {s.dimension}={s.label}: unexplained mismatch "
            f"{s.unexplained.value:.1%} of {s.total} ({s.note})"
            for s in self.flagged_segments
        ]
        out += [f"anomaly {a.check}: {a.detail}" for a in self.flagged_anomalies]
        return out

    @property
    def passed(self) -> bool:
        return not self.failures()


def validate(
    pairs: Sequence[Pair],
    config: ValidationConfig,
    source: SourceInfo,
    today: date,
    masker: Masker,
) -> ValidationResult:
    allowlist = Allowlist(config.expected_changes, today)
    register = Register(config, masker)
    tally = SegmentTally(config)
    diffs_all: list[frozenset[str]] = []
    points = []
    expected = unexplained = 0
    for pair in pairs:
        diffs = differences(pair, config.match)
        diffs_all.append(diffs)
        bad = False
        if diffs:
            diff_class = classify(pair, diffs, config)
            change = allowlist.explain(pair, diffs, diff_class.id)
            register.add(pair, diffs, diff_class, change)
            bad = change is None
            expected += not bad
            unexplained += bad
        tally.add(pair, bool(diffs), bad)
        points.append((pair.application.decided_at, bad))
    approvals = approval_rates(pairs, config.match, config.segments.confidence)
    anomalies = [
        psi_legacy_vs_new(pairs, config.anomalies),
        psi_new_vs_training(pairs, config.anomalies),
        approval_shift(approvals, config.anomalies),
        window_changes(windows(points, config.anomalies.window_minutes), config.anomalies),
    ]
    warnings = allowlist.warnings()
    warnings += [f"anomaly {a.check}: {a.detail}" for a in anomalies if a.status == "warn"]
    return ValidationResult(
        source=source,
        config=config,
        today=today,
        pairs=len(pairs),
        matched=sum(1 for d in diffs_all if not d),
        expected=expected,
        unexplained=rate(unexplained, len(pairs), config.segments.confidence),
        field_mismatches=field_mismatches(diffs_all),
        agreement=agreement_matrix(pairs),
        grades=grade_migration(pairs),
        approvals=approvals,
        reasons=compare_reasons(pairs),
        scores=compare_scores(pairs, config.match),
        segments=tally.results(),
        anomalies=anomalies,
        register=register.entries(),
        allowlist=allowlist.uses,
        warnings=warnings,
    )


def gate(result: ValidationResult, tolerance: float) -> tuple[bool, str]:
    """The traffic stages' check: (passed, reason).

    Fails when the replay left too many applications unanswered, a segment or an anomaly is
    flagged, or the overall unexplained mismatch rate is above ``tolerance`` with confidence
    (the lower bound of its Wilson interval is above it). Pure: no I/O.
    """
    problems = result.failures()
    overall = result.unexplained
    if overall.total and overall.lower > tolerance:
        problems.insert(
            0,
            f"unexplained mismatch {overall.value:.2%} of {overall.total} pairs "
            f"(lower bound {overall.lower:.2%}) above tolerance {tolerance:.2%}",
        )
    if problems:
        return False, "; ".join(problems)
    return True, (
        f"{result.pairs} pairs: unexplained mismatch {overall.value:.2%} "
        f"(upper bound {overall.upper:.2%}), tolerance {tolerance:.2%}; "
        f"{result.expected} expected difference(s); no flagged segment or anomaly"
    )

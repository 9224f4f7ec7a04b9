"""A stage's analysis: many measurements per metric folded into one stage verdict.

The rules are Argo Rollouts' (``failureLimit``, ``inconclusiveLimit``,
``consecutiveErrorLimit``), adapted to judges that say INCONCLUSIVE while data is short:

* FAIL when any metric has more FAIL measurements than ``failure_limit`` (default 0: the first
  FAIL), or more *consecutive* ERROR measurements than ``consecutive_error_limit`` (default 4:
  a source that keeps failing is never a silent pass);
* INCONCLUSIVE with ``inconclusive_limit_reached`` when a metric has more INCONCLUSIVE
  measurements than ``inconclusive_limit`` (default None: no limit, the stage holds until its
  deadline) -- the runner pauses for a person;
* PASS when every required metric has been measured and its latest measurement is PASS;
* otherwise INCONCLUSIVE: keep measuring.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from golive.analysis.verdict import Judgement, Verdict


@dataclass(frozen=True, slots=True)
class Limits:
    failure_limit: int = 0
    inconclusive_limit: int | None = None
    consecutive_error_limit: int = 4

    def __post_init__(self) -> None:
        if self.failure_limit < 0 or self.consecutive_error_limit < 0:
            raise ValueError("limits cannot be negative")
        if self.inconclusive_limit is not None and self.inconclusive_limit < 0:
            raise ValueError("inconclusive_limit cannot be negative")


@dataclass(frozen=True, slots=True)
class MetricSummary:
    metric: str
    measurements: int
    passes: int
    failures: int
    inconclusives: int
    errors: int
    consecutive_errors: int
    last: Judgement | None


@dataclass(frozen=True, slots=True)
class StageVerdict:
    verdict: Verdict  # PASS, FAIL or INCONCLUSIVE
    reasons: tuple[str, ...]
    metrics: tuple[MetricSummary, ...]
    inconclusive_limit_reached: bool = False

    @property
    def failed(self) -> bool:
        return self.verdict is Verdict.FAIL

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS


def summarise(metric: str, judgements: Sequence[Judgement]) -> MetricSummary:
    counts = dict.fromkeys(Verdict, 0)
    consecutive_errors = 0
    for judgement in judgements:
        counts[judgement.verdict] += 1
        consecutive_errors = consecutive_errors + 1 if judgement.verdict is Verdict.ERROR else 0
    return MetricSummary(
        metric=metric,
        measurements=len(judgements),
        passes=counts[Verdict.PASS],
        failures=counts[Verdict.FAIL],
        inconclusives=counts[Verdict.INCONCLUSIVE],
        errors=counts[Verdict.ERROR],
        consecutive_errors=consecutive_errors,
        last=judgements[-1] if judgements else None,
    )


def evaluate(
    required: Sequence[str], measurements: Iterable[Judgement], limits: Limits = Limits()
) -> StageVerdict:
    """The stage verdict from every measurement so far (oldest first)."""
    by_metric: dict[str, list[Judgement]] = {name: [] for name in required}
    for judgement in measurements:
        by_metric.setdefault(judgement.metric, []).append(judgement)
    summaries = tuple(summarise(name, items) for name, items in by_metric.items())

    failed: list[str] = []
    for s in summaries:
        if s.failures > limits.failure_limit:
            last_fail = next(j for j in reversed(by_metric[s.metric]) if j.verdict is Verdict.FAIL)
            failed.append(
                f"{s.metric}: {s.failures} failed measurement(s) (limit {limits.failure_limit}): "
                f"{last_fail.reason}"
            )
        if s.consecutive_errors > limits.consecutive_error_limit:
            last = s.last.reason if s.last else ""
            failed.append(
                f"{s.metric}: {s.consecutive_errors} consecutive measurement errors "
                f"(limit {limits.consecutive_error_limit}): {last}"
            )
    if failed:
        return StageVerdict(Verdict.FAIL, tuple(failed), summaries)

    if limits.inconclusive_limit is not None:
        held = [
            f"{s.metric}: {s.inconclusives} inconclusive measurement(s) "
            f"(limit {limits.inconclusive_limit}): {s.last.reason if s.last else ''}"
            for s in summaries
            if s.inconclusives > limits.inconclusive_limit
        ]
        if held:
            return StageVerdict(Verdict.INCONCLUSIVE, tuple(held), summaries, True)

    pending = [s for s in summaries if s.last is None or s.last.verdict is not Verdict.PASS]
    if not summaries or pending:
        reasons = tuple(
            f"{s.metric}: not measured yet"
            if s.last is None
            else f"{s.metric}: {s.last.verdict}: {s.last.reason}"
            for s in pending
        ) or ("no metrics to judge",)
        return StageVerdict(Verdict.INCONCLUSIVE, reasons, summaries)
    return StageVerdict(
        Verdict.PASS,
        tuple(f"{s.metric}: {s.last.reason}" for s in summaries if s.last is not None),
        summaries,
    )


@dataclass(frozen=True, slots=True)
class Analysis:
    """The measurements of one stage so far; immutable, ``record`` returns the next state."""

    required: tuple[str, ...]
    limits: Limits = field(default_factory=Limits)
    measurements: tuple[Judgement, ...] = ()

    def record(self, *judgements: Judgement) -> Analysis:
        return Analysis(self.required, self.limits, self.measurements + judgements)

    def record_error(self, reason: str, metrics: Sequence[str] | None = None) -> Analysis:
        """A measurement could not be taken (a source failed): ERROR for each metric."""
        names = tuple(metrics) if metrics is not None else self.required
        return self.record(*(Judgement.error(name, reason) for name in names))

    def verdict(self) -> StageVerdict:
        return evaluate(self.required, self.measurements, self.limits)
